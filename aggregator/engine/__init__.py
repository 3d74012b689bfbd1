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

from aggregator.engine.collector import release_memory
from aggregator.engine.pool import CpuPool, default_workers
from aggregator.engine.writer import Writer

__all__ = ["CpuPool", "Writer", "default_workers", "release_memory"]
