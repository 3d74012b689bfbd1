"""Watchers (watchfiles): a seed folder's change requests its update; a config edit a reload."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from watchfiles import awatch

from aggregator.config import Config
from aggregator.update.kinds import watched_folders

__all__ = ["SeedWatch", "preload_watchers", "watch_config"]

log = logging.getLogger(__name__)


def preload_watchers() -> None:
    """Import now what the first ``awatch`` imports, so it is not imported on the loop.

    ``awatch`` (and Starlette's thread calls) load anyio's asyncio backend on
    first use: 40-50 ms of imports that, on the event loop, were the daemon's
    slowest ``/healthz`` answers. anyio loads it by this name itself.
    """
    importlib.import_module("anyio._backends._asyncio")


class SeedWatch:
    """Watches the seed folders; a change in one requests an update of its source.

    Watching is an accelerator: the restart reconciliation and the source's
    interval pick up whatever a watcher misses.

    Args:
        request: called with the source name of a folder that changed.
    """

    def __init__(self, request: Callable[[str], None]) -> None:
        self._request = request
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def restart(self, folders: Mapping[str, Path]) -> None:
        """Watch these folders (source name -> folder) instead of the previous ones."""
        if self._stop is not None:
            self._stop.set()
        present = {name: folder for name, folder in folders.items() if folder.is_dir()}
        if not present:
            self._stop = self._task = None
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._watch(present, self._stop), name="seed-watch")

    async def close(self) -> None:
        """Stop watching and wait for the watcher to end."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self, folders: Mapping[str, Path], stop: asyncio.Event) -> None:
        try:
            async for changes in awatch(
                *folders.values(), stop_event=stop, debounce=200, step=50, recursive=True
            ):
                touched = {
                    name
                    for _change, path in changes
                    for name, folder in folders.items()
                    if Path(path).is_relative_to(folder)
                }
                for name in sorted(touched):
                    log.debug("%s: seed folder changed", name, extra={"source": name})
                    self._request(name)
        except Exception:  # watching is an accelerator: polling still picks changes up
            log.exception("watching the seed folders failed; changes are seen at the next poll")


async def watch_config(
    paths: Sequence[Path], on_change: Callable[[], None], stop: asyncio.Event
) -> None:
    """Call ``on_change`` whenever one of the config files is written, until ``stop``.

    Args:
        paths: the config file and the files its ``include:`` lists.
        on_change: called once per burst of writes.
        stop: set to end the watch.
    """
    files = {path.resolve() for path in paths}
    # Watch the folders, not the files: editors replace a file by renaming.
    folders = sorted({path.parent for path in files})
    try:
        async for changes in awatch(
            *folders, stop_event=stop, debounce=300, step=50, recursive=False
        ):
            changed = sorted({Path(p).resolve() for _c, p in changes} & files)
            if changed:
                log.info("%s changed: reloading", ", ".join(str(p) for p in changed))
                on_change()
    except Exception:
        log.exception("watching the config files failed; use SIGHUP to reload")


def seed_folders(config: Config) -> dict[str, Path]:
    """Source name -> folder, for the configured seed folders (what :class:`SeedWatch` watches)."""
    return watched_folders(config.sources)
