"""The garbage collector's settings while a process ingests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["INGEST_THRESHOLDS", "ingest_gc"]

#: young, middle and old generation thresholds while ingesting (CPython's
#: defaults are 700, 10, 10)
INGEST_THRESHOLDS = (20_000, 50, 100)


@contextmanager
def ingest_gc() -> Iterator[None]:
    """Collect less often, and never walk what start-up built, until the block ends.

    An ingest allocates millions of short-lived objects (rows, items, parse
    results) and few reference cycles, while start-up leaves a large heap
    that lives as long as the process (modules, the config, compiled topic
    queries, the store's statements). With the defaults the collector ran a
    young collection every 700 net allocations and walked that whole heap
    again and again: on the N = 1,000 ingest benchmark these settings cut the
    main process's CPU by ~20% (56-57 s to 43-47 s) and the first pass's wall
    time by 15-20%, peak memory unchanged (``docs/performance.md``). Objects
    alive at the start are frozen (moved out of every generation); they are
    thawed, and the thresholds restored, on exit.
    A frozen object that later becomes part of a garbage cycle (the daemon's
    old config after a reload) waits for the exit; acyclic garbage is freed
    at once, as always.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*INGEST_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
