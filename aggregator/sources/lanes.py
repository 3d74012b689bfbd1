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

__all__ = ["Lanes", "Slot", "waits"]

#: While set to a list, the seconds each :meth:`Lanes.slot` of this context
#: waited are appended to it (and the CPU pool's wait for a free worker): a
#: source's update sets it, so that the time its poll records is its own, not
#: the time another source held its host's slot or the parse workers started.
waits: ContextVar[list[float] | None] = ContextVar("lane_waits", default=None)


@dataclass(slots=True)
class _Lane:
    semaphore: asyncio.Semaphore
    users: int = 0


class Slot:
    """A held lane and shared slot (:meth:`Lanes.slot`), given back when its block ends
    or sooner, by :meth:`release`."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[asyncio.Semaphore] = []

    def _hold(self, semaphore: asyncio.Semaphore) -> None:
        self._held.append(semaphore)

    def release(self) -> None:
        """Give the lane and the shared slot back now (again: nothing)."""
        while self._held:
            self._held.pop().release()


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
    async def slot(self, key: str | None) -> AsyncIterator[Slot]:
        """Hold ``key``'s lane, then a shared slot (always in that order).

        ``key=None`` takes only a shared slot. The block may give both back
        before it ends (:meth:`Slot.release`): a source's update does once its
        write is queued, so the next source of the host fetches while the
        writer commits.
        """
        waited = waits.get()
        queued = time.perf_counter() if waited is not None else 0.0
        lane = self._enter(key) if key is not None else None
        held = Slot()
        try:
            if lane is not None:
                await lane.semaphore.acquire()
                held._hold(lane.semaphore)
            await self._shared.acquire()
            held._hold(self._shared)
            if waited is not None:
                waited.append(time.perf_counter() - queued)
            yield held
        finally:
            held.release()
            if key is not None:
                self._leave(key)

    def _enter(self, key: str) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(asyncio.Semaphore(self.per_key))
        lane.users += 1
        return lane

    def _leave(self, key: str) -> None:
        lane = self._lanes[key]
        lane.users -= 1
        if lane.users == 0:
            del self._lanes[key]

    def keys(self) -> int:
        """Keys with a holder or a waiter now."""
        return len(self._lanes)
