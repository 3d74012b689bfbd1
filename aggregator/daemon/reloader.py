"""Carrying out a reload: read the config file again, plan it, apply it, swap the fetcher."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.config import Config, load_config
from aggregator.errors import ConfigError
from aggregator.runtime import with_data_dir
from aggregator.update import Context, apply_config, make_fetcher, needs_fetcher, preload

from .reload import ReloadPlan, plan_reload

if TYPE_CHECKING:
    from aggregator.sources.http import Fetcher

__all__ = ["ConfigReloader"]

log = logging.getLogger(__name__)


class ConfigReloader:
    """Reloads for one daemon; keeps the fetchers they replaced until :meth:`aclose`.

    Args:
        data_dir_override: ``--data-dir``, applied to every config loaded again.
    """

    def __init__(self, data_dir_override: Path | None) -> None:
        self._override = data_dir_override
        #: fetchers replaced by a reload: updates in flight may still use them
        self._retired: list[Fetcher] = []

    async def load(self, current: Config) -> ReloadPlan | None:
        """The plan of a reload of ``current``'s file; None (logged) when the new one is invalid."""
        try:
            loaded = await asyncio.to_thread(load_config, current.path)
        except ConfigError as exc:
            log.error("reload refused, still running on the previous config: %s", exc)
            return None
        plan = plan_reload(current, with_data_dir(loaded, self._override))
        for warning in plan.warnings:
            log.warning("%s", warning)
        return plan

    async def apply(
        self, ctx: Context, plan: ReloadPlan, *, now: datetime
    ) -> tuple[Context, frozenset[str]]:
        """Apply ``plan`` to the store; the new context and the topics it made dirty."""
        applied, dirty = await asyncio.to_thread(apply_config, ctx, plan.config, now=now)
        await asyncio.to_thread(preload, plan.config)
        fetcher = ctx.fetcher
        if plan.new_fetcher and fetcher is not None:
            # Updates in flight keep the old fetcher; it is closed at shutdown.
            self._retired.append(fetcher)
            fetcher = None
        if fetcher is None and needs_fetcher(plan.config):
            fetcher = make_fetcher(plan.config)
        return dataclasses.replace(applied, fetcher=fetcher), dirty

    async def aclose(self) -> None:
        """Close the fetchers reloads replaced."""
        for fetcher in self._retired:
            with contextlib.suppress(Exception):
                await fetcher.aclose()
        self._retired.clear()
