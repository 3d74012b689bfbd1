"""The republisher's exports, one at a time: in a publishing process, a parse worker or a thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.model import TopicSpec
from aggregator.publish import Site
from aggregator.store import is_memory_store
from aggregator.update import Context, site_for

if TYPE_CHECKING:
    from aggregator.publish.export import PublishReport
    from aggregator.publish.incremental import StoryReader

__all__ = ["Exporter"]


class Exporter:
    """Runs the republisher's exports: never two at once, even across a cancellation."""

    def __init__(self) -> None:
        #: the export running now (it may outlive a cancelled publish)
        self._inflight: asyncio.Future[PublishReport] | None = None

    @property
    def busy(self) -> bool:
        """Whether an export is running."""
        return self._inflight is not None and not self._inflight.done()

    async def run(self, ctx: Context, out_dir: Path, dirty: frozenset[str] | None) -> PublishReport:
        """Run one export; one at a time, and never two at once even across a cancellation.

        Rendering is CPU work: in the daemon's publishing process, or a worker
        process of the ingest pool when it has processes (so this process
        never imports a renderer), else in a thread. A publish cancelled at
        shutdown keeps running there, and the next one waits for it before it
        starts.
        """
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._inflight)
        site = site_for(ctx.config)
        topics = list(ctx.config.topics)
        pool = (ctx.stages.publisher or ctx.stages.pool) if ctx.stages is not None else None
        run: Awaitable[PublishReport]
        if pool is not None and pool.processes and not is_memory_store(ctx.config.store_url):
            run = pool.run(
                "publish",
                "aggregator.runtime.publishing:publish_store",
                ctx.config.store_url,
                out_dir,
                site,
                topics,
                dirty=dirty,
            )
        else:
            run = asyncio.to_thread(self._publish_here, ctx.store, out_dir, site, topics, dirty)
        task = asyncio.ensure_future(run)
        self._inflight = task
        return await asyncio.shield(task)

    @staticmethod
    def _publish_here(
        store: StoryReader,
        out_dir: Path,
        site: Site,
        topics: list[TopicSpec],
        dirty: frozenset[str] | None,
    ) -> PublishReport:
        from aggregator.publish.incremental import publish

        return publish(out_dir, site, topics, store, dirty=dirty)
