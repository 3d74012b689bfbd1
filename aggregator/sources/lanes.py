"""Per-key lanes in front of one shared limit.

A task takes its key's lane first and a shared slot second, so a task
waiting for a busy key (a slow host) never holds a shared slot that a task of
another key could use. The fetcher keys its requests by host; ``update_all``
keys whole updates by their source's host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Lanes", "waits"]

#: While set to a list, the seconds each :meth:`Lanes.slot` of this context
#: waited are appended to it (and the CPU pool's wait for a free worker): a
#: source's update sets it, so that the time its poll records is its own, not
#: the time another source held its host's slot or the parse workers started.
waits: ContextVar[list[float] | None] = ContextVar("lane_waits", default=None)


@dataclass(slots=True)
class _Lane:
    semaphore: asyncio.Semaphore
    users: int = 0


class Lanes:
    """At most ``per_key`` holders of one key at once, and ``total`` over all keys.

    A key's lane exists while it has users, so the keys seen over a long run
    do not accumulate.

    Raises:
        ValueError: a limit below 1.
    """

    def __init__(self, per_key: int, total: int) -> None:
        if per_key < 1 or total < 1:
            raise ValueError("lane limits must be at least 1")
        self.per_key = per_key
        self.total = total
        self._shared = asyncio.Semaphore(total)
        self._lanes: dict[str, _Lane] = {}

    @asynccontextmanager
    async def slot(self, key: str | None) -> AsyncIterator[None]:
        """Hold ``key``'s lane, then a shared slot (always in that order).

        ``key=None`` takes only a shared slot.
        """
        waited = waits.get()
        queued = time.perf_counter() if waited is not None else 0.0
        if key is None:
            async with self._shared:
                if waited is not None:
                    waited.append(time.perf_counter() - queued)
                yield
            return
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(asyncio.Semaphore(self.per_key))
        lane.users += 1
        try:
            async with lane.semaphore, self._shared:
                if waited is not None:
                    waited.append(time.perf_counter() - queued)
                yield
        finally:
            lane.users -= 1
            if lane.users == 0:
                del self._lanes[key]

    def keys(self) -> int:
        """Keys with a holder or a waiter now."""
        return len(self._lanes)
