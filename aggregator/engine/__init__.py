"""The ingest engine's stages between fetch and store.

::

    fetch (event loop) ─► CpuPool: parse + normalise ─► Writer: one thread, batched commits
                        (worker processes)              (many sources per transaction)

A ``full_content`` source fetches its new entries' pages between parsing and
finishing (:mod:`aggregator.engine.pages`, on the event loop, through the same
fetcher) and extracts their articles in the workers
(:mod:`aggregator.engine.articles`).

Each stage is bounded (``CpuPool.capacity``, ``Writer.capacity``, and the
pipeline's limit on sources in flight), so a slow stage slows the ones before
it instead of growing memory. :mod:`aggregator.update` wires the stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator._lazy import load

if TYPE_CHECKING:
    from aggregator.engine.collector import release_memory
    from aggregator.engine.pool import CpuPool, default_workers
    from aggregator.engine.writer import Writer

__all__ = ["CpuPool", "Writer", "default_workers", "release_memory"]

# Loaded on first use: a parse worker imports this package for its stages
# (``aggregator.engine.work``), and the pool and the writer would bring
# asyncio and the threading machinery into every worker (6 MiB) for nothing.
_LAZY = {
    "CpuPool": "aggregator.engine.pool",
    "default_workers": "aggregator.engine.pool",
    "Writer": "aggregator.engine.writer",
    "release_memory": "aggregator.engine.collector",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _LAZY, globals(), name)
