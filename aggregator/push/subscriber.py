"""The WebSub subscriber (W3C WebSub): subscribe to sources' hubs, verify, take distributions.

A URL source whose feed names a hub and its own URL (``rel="hub"`` and
``rel="self"``, JSON Feed ``hubs`` and ``feed_url``) is subscribed: a row is
saved (an unguessable callback segment and a random secret), then the hub is
asked (``hub.mode=subscribe``). The hub's verification GET is answered with
its challenge only for that callback, that mode and that topic; a
distribution is taken only with a valid ``X-Hub-Signature`` of its body with
that secret, and ingested as the source's update (:mod:`aggregator.update.pushed`).
Anything else changes nothing and is logged. A subscription is renewed when
a fifth of its lease is left, retried an hour after it failed, and the hub
is told to unsubscribe when its source is removed or ``websub: false``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from aggregator.errors import AggregatorError
from aggregator.model import SourceKind, SourceResult, SourceSpec, SourceState
from aggregator.publish.paths import WEBSUB_CALLBACKS
from aggregator.push.signing import valid_hub_signature
from aggregator.store.push import Subscription
from aggregator.update import Context, make_fetcher
from aggregator.update.pushed import ingest_pushed

__all__ = ["CALLBACK_PATH", "Subscriber", "wanted_topics"]

log = logging.getLogger(__name__)

#: the callback URL is ``server.base_url`` + this + the row's callback segment
CALLBACK_PATH = WEBSUB_CALLBACKS
#: a hub that has not verified within this long has failed
VERIFY_WAIT = timedelta(minutes=2)
#: a failed subscription is tried again after this long
RETRY_AFTER = timedelta(hours=1)
#: the leases a hub may grant that are taken as given (outside: clamped)
_LEASE_BOUNDS = (timedelta(minutes=5), timedelta(days=365))


def wanted_topics(
    specs: tuple[SourceSpec, ...], states: Mapping[str, SourceState], *, on: bool
) -> dict[str, tuple[str, str]]:
    """Source name -> (hub, topic) for the sources that should be subscribed."""
    if not on:
        return {}
    wanted = {}
    for spec in specs:
        state = states.get(spec.name)
        if spec.kind is SourceKind.URL and spec.websub and state and state.hub and state.self_url:
            wanted[spec.name] = (state.hub, state.self_url)
    return wanted


class Subscriber:
    """Subscriptions to the sources' hubs, for the daemon.

    Args:
        current: the daemon's current context (a reload replaces it).
        on_result: told of each distribution's update (health, republishing).
        request_poll: asks for a poll of a source now: its subscription failed or
            lapsed, and its next poll was scheduled at the long fallback interval.
    """

    def __init__(
        self,
        current: Callable[[], Context],
        on_result: Callable[[SourceResult], None],
        request_poll: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._current = current
        self._on_result = on_result
        self._request_poll = request_poll
        self._ingests: set[asyncio.Task[None]] = set()

    @property
    def max_body(self) -> int:
        """The largest distribution taken: the largest source's ``max_bytes``."""
        return max((s.max_bytes for s in self._current().config.sources), default=10 * 2**20)

    # -- subscribing ---------------------------------------------------------------

    async def sync(self) -> None:
        """One pass: subscribe, renew, retry and unsubscribe as the config and states say."""
        ctx = self._current()
        now = ctx.clock()
        states, subs = await asyncio.to_thread(_read, ctx)
        wanted = wanted_topics(ctx.config.sources, states, on=ctx.config.websub.subscribe)
        for name, (hub, topic) in sorted(wanted.items()):
            sub = subs.get(name)
            if sub is not None and sub.lease_until is not None and sub.lease_until <= now:
                await self._fail(ctx, sub, "the lease lapsed unrenewed")  # retried later
                continue
            if sub is None or (sub.hub, sub.topic) != (hub, topic) or self._due(sub, now):
                await self._request(ctx, name, hub, topic, "subscribe", sub)
            elif sub.state == "requested" and now - sub.requested_at > VERIFY_WAIT:
                await self._fail(ctx, sub, "the hub never verified the subscription")
        for name, sub in sorted(subs.items()):
            if name in wanted:
                continue
            if sub.mode != "unsubscribe":
                await self._request(ctx, name, sub.hub, sub.topic, "unsubscribe", sub)
            elif now - sub.requested_at > VERIFY_WAIT:
                await asyncio.to_thread(ctx.store.push.delete_subscription, name)

    @staticmethod
    def _due(sub: Subscription, now: datetime) -> bool:
        """Whether an existing subscription should be requested again (renewed or retried)."""
        if sub.mode != "subscribe":
            return True
        if sub.state == "failed":
            return now - sub.requested_at >= RETRY_AFTER
        if sub.state == "active" and sub.lease_until is not None:
            # Renewed when a fifth of the lease the hub granted is left.
            return sub.lease_until - now <= (sub.lease_until - sub.requested_at) / 5
        return False

    async def _request(
        self,
        ctx: Context,
        name: str,
        hub: str,
        topic: str,
        mode: str,
        sub: Subscription | None,
    ) -> None:
        now = ctx.clock()
        if sub is not None and (sub.hub, sub.topic) == (hub, topic):
            # A renewal (or an unsubscription) keeps the callback and the secret:
            # distributions signed meanwhile still verify.
            row = replace(sub, mode=mode, requested_at=now, last_error=None)
            if sub.state == "failed":
                row = replace(row, state="requested")
        else:
            row = Subscription(
                source=name,
                hub=hub,
                topic=topic,
                callback=secrets.token_urlsafe(24),
                secret=secrets.token_hex(32),
                state="requested",
                mode=mode,
                requested_at=now,
            )
        # Saved first: a hub may verify before it answers the request.
        await asyncio.to_thread(ctx.store.push.save_subscription, row)
        lease = int(ctx.config.websub.lease.total_seconds())
        form = {
            "hub.mode": mode,
            "hub.topic": topic,
            "hub.callback": ctx.config.server.base_url + CALLBACK_PATH + row.callback,
            "hub.secret": row.secret,
            "hub.lease_seconds": str(lease),
        }
        try:
            if ctx.fetcher is not None:
                status = await ctx.fetcher.post_form(hub, form, source=f"{name}: WebSub hub")
            else:  # a daemon of seed folders unsubscribing what an earlier config subscribed
                async with make_fetcher(ctx.config) as fetcher:
                    status = await fetcher.post_form(hub, form, source=f"{name}: WebSub hub")
        except AggregatorError as exc:
            await self._fail(ctx, row, str(exc))
            return
        if not 200 <= status < 300:
            await self._fail(ctx, row, f"{hub}: the hub answered HTTP {status} to {mode}")
            return
        log.info("%s: asked %s to %s to %s", name, hub, mode, topic)

    async def _fail(self, ctx: Context, sub: Subscription, error: str) -> None:
        log.warning("%s: WebSub %s failed: %s", sub.source, sub.mode, error)
        if sub.mode == "unsubscribe":
            await asyncio.to_thread(ctx.store.push.delete_subscription, sub.source)
            return
        failed = replace(sub, state="failed", last_error=error, lease_until=None)
        await asyncio.to_thread(ctx.store.push.save_subscription, failed)
        if sub.lease_until is not None:
            self._request_poll(sub.source)  # it was polled at the fallback interval

    # -- the hub's requests -----------------------------------------------------------

    async def verify(self, callback: str, params: Mapping[str, str]) -> str | None:
        """Answer a verification: the challenge for what we asked, None (404) for anything else."""
        ctx = self._current()
        sub = await asyncio.to_thread(ctx.store.push.subscription, callback)
        mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
        if sub is None:
            log.warning("WebSub verification refused: unknown callback (mode %r)", mode[:20])
            return None
        if mode == "denied" and topic == sub.topic:
            await self._fail(ctx, sub, f"the hub denied it: {params.get('hub.reason', '')[:200]}")
            return ""
        challenge = params.get("hub.challenge", "")
        if mode != sub.mode or topic != sub.topic or not challenge:
            log.warning(
                "%s: WebSub verification refused: %r for %r, but we asked %r for %r",
                sub.source,
                mode[:20],
                topic[:200],
                sub.mode,
                sub.topic,
            )
            return None
        if mode == "unsubscribe":
            await asyncio.to_thread(ctx.store.push.delete_subscription, sub.source)
            log.info("%s: unsubscribed from %s", sub.source, sub.hub)
            return challenge
        lease = _lease(params.get("hub.lease_seconds"), ctx.config.websub.lease)
        active = replace(sub, state="active", lease_until=ctx.clock() + lease, last_error=None)
        await asyncio.to_thread(ctx.store.push.save_subscription, active)
        log.info("%s: subscribed to %s at %s for %s", sub.source, sub.topic, sub.hub, lease)
        return challenge

    async def distribute(self, callback: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Take a content distribution; ingest it when it is signed with the subscription's secret.

        Returns:
            404 for an unknown callback; 202 otherwise (WebSub asks a
            subscriber to accept, and ignore, a distribution whose signature
            is wrong, so a forger learns nothing).
        """
        ctx = self._current()
        sub = await asyncio.to_thread(ctx.store.push.subscription, callback)
        if sub is None:
            log.warning("WebSub distribution ignored: unknown callback (%d bytes)", len(body))
            return 404
        signature = headers.get("x-hub-signature")
        if not valid_hub_signature(signature, sub.secret, body):
            why = "no X-Hub-Signature" if not signature else "a bad X-Hub-Signature"
            log.warning("%s: WebSub distribution ignored: %s", sub.source, why)
            return 202
        spec = ctx.config.source(sub.source)
        if spec is None or sub.mode != "subscribe":
            log.warning("%s: WebSub distribution ignored: not subscribed", sub.source)
            return 202
        if len(body) > spec.max_bytes:
            log.warning("%s: WebSub distribution ignored: over max_bytes", sub.source)
            return 413
        kept = {k: v for k, v in headers.items() if k in ("content-type", "content-location")}
        task = asyncio.create_task(self._ingest(spec, ctx, body, kept))
        self._ingests.add(task)
        task.add_done_callback(self._ingests.discard)
        return 202

    async def _ingest(
        self, spec: SourceSpec, ctx: Context, body: bytes, headers: Mapping[str, str]
    ) -> None:
        result = await ingest_pushed(spec, ctx, body, headers)
        log.info("%s: WebSub distribution: %d new", spec.name, result.new)
        self._on_result(result)

    async def drain(self) -> None:
        """Wait for the distributions being ingested."""
        if self._ingests:
            await asyncio.gather(*self._ingests, return_exceptions=True)


def _read(ctx: Context) -> tuple[dict[str, SourceState], dict[str, Subscription]]:
    states = {s.name: s for s in ctx.store.states()}
    subs = {s.source: s for s in ctx.store.push.subscriptions()}
    return states, subs


def _lease(given: str | None, asked: timedelta) -> timedelta:
    """The lease the hub granted (its ``hub.lease_seconds``), within sane bounds."""
    if given is None or not given.strip().isdigit():
        return asked
    low, high = _LEASE_BOUNDS
    return min(max(timedelta(seconds=int(given.strip()[:12])), low), high)
