"""The entry points: ``aggregator run`` (lock, GC thresholds, switch interval) and ``serve``."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from aggregator.config import Config
from aggregator.engine.collector import SERVING_THRESHOLDS, ingest_gc
from aggregator.runtime import DaemonSettings, connection_limit, listen, topic_map, with_data_dir
from aggregator.runtime.watch import preload_watchers
from aggregator.update import open_context, preload, publish_export
from aggregator.web import DocumentStore, create_app, serve

from .core import Daemon
from .lock import DataDirLock

__all__ = ["run_daemon", "serve_documents"]

log = logging.getLogger(__name__)


def run_daemon(
    config: Config,
    *,
    data_dir: Path | None = None,
    settings: DaemonSettings | None = None,
) -> None:
    """Take the data folder's lock and run the daemon until SIGTERM/SIGINT.

    Raises:
        DataDirLockedError: another daemon runs on the same data folder.
        StoreError: the store cannot be opened.
    """
    config = with_data_dir(config, data_dir)
    settings = settings or DaemonSettings()
    previous = sys.getswitchinterval()
    # The store writer and the publishing thread are CPU-bound Python: a short
    # switch interval hands the GIL back to the event loop sooner when it waits.
    sys.setswitchinterval(settings.switch_interval)
    try:
        with DataDirLock(config.data_dir):
            preload(config)
            preload_watchers()
            daemon = Daemon(config, settings, data_dir_override=data_dir)
            with ingest_gc(SERVING_THRESHOLDS):
                asyncio.run(daemon.run())
    finally:
        sys.setswitchinterval(previous)


def serve_documents(config: Config, *, data_dir: Path | None = None) -> None:
    """Serve what the store holds, rendered once, without polling (``aggregator serve``).

    Raises:
        StoreError: the store cannot be opened.
    """
    config = with_data_dir(config, data_dir)

    async def main() -> None:
        # open_context syncs the config into the store first, so a topic whose
        # query changed since the last run is served with its new membership.
        ctx = await asyncio.to_thread(open_context, config)
        try:
            report = await asyncio.to_thread(publish_export, ctx)
        finally:
            ctx.close()
        documents = DocumentStore(topics=topic_map(config), cache_size=config.server.cache_size)
        documents.replace_files(config.data_dir / "public", report.documents)
        app = create_app(documents)
        sock = listen(config)
        server = serve(
            app,
            host=config.server.host,
            port=config.server.port,
            max_connections=connection_limit(config),
        )
        log.info("serving %d documents at %s", len(documents), config.server.base_url)
        await server.serve(sockets=[sock])

    asyncio.run(main())
