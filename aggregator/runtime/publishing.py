"""Publishing from the store: the incremental export, in this process or in a worker.

:func:`publish_store` is what a worker process runs (called by name, so the
process that owns the pool never imports a renderer): it opens the store at
its URL once per process, read only, and brings the export up to date.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from aggregator.model import TopicSpec
from aggregator.publish._base import Site
from aggregator.publish.incremental import PublishReport, StoryReader, publish
from aggregator.store import open_store

__all__ = ["publish_store"]

#: stores opened by :func:`publish_store` in this process, by URL
_READERS: dict[str, StoryReader] = {}


def publish_store(
    store_url: str,
    out_dir: Path,
    site: Site,
    topics: Sequence[TopicSpec],
    *,
    dirty: Collection[str] | None = None,
) -> PublishReport:
    """:func:`~aggregator.publish.incremental.publish`, reading the store at ``store_url``.

    Raises:
        StoreError: the store cannot be opened.
        PublishError: see :func:`~aggregator.publish.incremental.publish`.
    """
    reader = _READERS.get(store_url)
    if reader is None:
        reader = _READERS[store_url] = open_store(store_url)
    return publish(out_dir, site, topics, reader, dirty=dirty)
