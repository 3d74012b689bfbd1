"""The garbage collector's settings while a process ingests."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aggregator.engine.heap import malloc_trim

log = logging.getLogger(__name__)

__all__ = ["INGEST_THRESHOLDS", "SERVING_THRESHOLDS", "ingest_gc", "release_memory"]

#: young, middle and old generation thresholds while ingesting (CPython's
#: defaults are 700, 10, 10)
INGEST_THRESHOLDS = (20_000, 50, 100)

#: the same, in a process that also answers HTTP (the daemon). A collection
#: holds the GIL, so its length is how long every thread waits, the event
#: loop included: with INGEST_THRESHOLDS the middle generation grew to a
#: million objects and its collections took 0.1-0.5 s while the daemon
#: ingested, the web server's slowest answers. Short young and middle
#: generations keep each collection to milliseconds; the old one is walked
#: rarely (and only once it has grown by a quarter, as CPython decides).
SERVING_THRESHOLDS = (5_000, 5, 1_000)


@contextmanager
def ingest_gc(thresholds: tuple[int, int, int] = INGEST_THRESHOLDS) -> Iterator[None]:
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
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def release_memory() -> None:
    """Collect every generation, then hand the C heap's free pages back to the kernel.

    For a process going idle after a burst of work (the daemon when its parse
    workers stop): the collector's old generation is rarely walked while it
    serves (:data:`SERVING_THRESHOLDS`), so cycles of the burst wait there;
    and glibc keeps freed heap pages mapped until asked. Both are memory the
    daemon would otherwise hold at rest.
    """
    unreachable = gc.collect()
    released = malloc_trim()
    log.debug("released memory: %d unreachable objects, heap trimmed: %s", unreachable, released)
