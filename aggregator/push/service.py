"""The daemon's side of push: one loop for subscriptions and webhooks, and the callback handler.

The loop wakes when an update finishes (a feed may have named a hub, a
topic may have a new story) and at least every :data:`EVERY` seconds (leases
to renew, deliveries due again), never more than once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aggregator.model import SourceResult
from aggregator.push.subscriber import Subscriber
from aggregator.push.webhooks import deliver_due, queue_new
from aggregator.update import Context

__all__ = ["EVERY", "PushService"]

log = logging.getLogger(__name__)

#: the longest the loop sleeps
EVERY = 15.0
#: the shortest time between two passes
_GAP = 1.0


class PushService:
    """WebSub subscriptions and webhook deliveries for a running daemon.

    Args:
        current: the daemon's current context.
        on_result: told of each pushed distribution's update.
        request_poll: asks the dispatcher for a poll of a source now.
    """

    def __init__(
        self,
        current: Callable[[], Context],
        on_result: Callable[[SourceResult], None],
        request_poll: Callable[[str], None],
    ) -> None:
        self._current = current
        #: answers the hubs (``create_app(callbacks=...)``)
        self.subscriber = Subscriber(current, on_result, request_poll)
        self._wake: asyncio.Event | None = None

    def poke(self) -> None:
        """Run a pass soon (an update finished)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Pass after pass until cancelled; a failing pass is logged and the loop goes on."""
        self._wake = asyncio.Event()
        while True:
            started = time.monotonic()
            try:
                await self.one_pass()
            except Exception:  # a bug here must not stop the daemon
                log.exception("push: the pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), EVERY)
            await asyncio.sleep(max(0.0, _GAP - (time.monotonic() - started)))

    async def one_pass(self) -> None:
        """Subscribe, renew and unsubscribe; queue new stories for webhooks; deliver what is due."""
        await self.subscriber.sync()
        ctx = self._current()
        topics = tuple(t for t in ctx.config.topics if t.notify)
        if not topics:
            return
        now = ctx.clock()
        base = ctx.config.server.base_url
        await asyncio.to_thread(queue_new, ctx.store, topics, base, now)
        if ctx.fetcher is not None:
            await deliver_due(ctx.store, topics, ctx.fetcher, now)

    async def close(self) -> None:
        """Wait for the distributions being ingested."""
        await self.subscriber.drain()
