"""Webhooks out: each new story of a topic, POSTed to each of its ``notify:`` targets.

Queueing and delivering are apart, and both are rows in the store
(:mod:`aggregator.store.push`). :func:`queue_new` finds the stories that
joined a topic since the target's cursor and queues one delivery each, with
its body fixed then. :func:`deliver_due` POSTs the deliveries that are due:
``Content-Type: application/json``, ``X-Aggregator-Signature:
sha256=<HMAC of the body with the target's secret>``, ``Idempotency-Key: <story
id>``, ``X-Aggregator-Topic``. A 2xx marks a delivery delivered and it is
never sent again; anything else (a refused address included) is retried
with a doubling delay (30 s, 1 min, ... at most :data:`LONGEST_WAIT`) until
:data:`GIVE_UP_AFTER`. Targets are reached through the fetcher's guards
(``allow_networks``, no redirects followed). A restart loses nothing: what
was queued and not acknowledged is sent when it is due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.errors import AggregatorError
from aggregator.model import TopicSpec, WebhookTarget
from aggregator.publish.paths import PathKind, topic_path
from aggregator.push.items import webhook_body
from aggregator.push.signing import sign
from aggregator.store import Store
from aggregator.store.push import Delivery

if TYPE_CHECKING:
    from aggregator.sources.http import Fetcher

__all__ = ["FIRST_WAIT", "GIVE_UP_AFTER", "LONGEST_WAIT", "deliver_due", "queue_new", "retry_at"]

log = logging.getLogger(__name__)

#: the wait after the first failed attempt; it doubles with each failure ...
FIRST_WAIT = timedelta(seconds=30)
#: ... up to this
LONGEST_WAIT = timedelta(minutes=10)
#: a delivery still failing this long after it was queued is given up
GIVE_UP_AFTER = timedelta(hours=24)
#: seconds one POST may take
TIMEOUT = 10.0


def queue_new(store: Store, topics: tuple[TopicSpec, ...], base_url: str, now: datetime) -> int:
    """Queue a delivery for each story that joined a topic since its targets last looked.

    Blocking (it reads and writes the store). A target seen for the first time
    starts from now: it gets the stories that join from then on.

    Returns:
        How many deliveries were queued.
    """
    queued = 0
    for topic in topics:
        feed_url = base_url + topic_path(topic.name, PathKind.JSON)
        for target in topic.notify:
            upto, ids = store.push.new_members(topic.name, target.url)
            stories = {s.id: s for s in store.stories(ids)} if ids else {}
            bodies = [(i, webhook_body(stories[i], topic, feed_url)) for i in ids if i in stories]
            queued += store.push.queue(topic.name, target.url, bodies, upto=upto, now=now)
    return queued


def retry_at(delivery: Delivery, now: datetime) -> datetime | None:
    """When to try a delivery again after its attempt at ``now`` failed; None: give up."""
    if now - delivery.created_at >= GIVE_UP_AFTER:
        return None
    wait: timedelta = FIRST_WAIT * (1 << min(delivery.attempts, 20))
    return now + min(wait, LONGEST_WAIT)


def _target(topics: tuple[TopicSpec, ...], delivery: Delivery) -> WebhookTarget | None:
    for topic in topics:
        if topic.name == delivery.topic:
            return next((t for t in topic.notify if t.url == delivery.target), None)
    return None


async def deliver_due(
    store: Store,
    topics: tuple[TopicSpec, ...],
    fetcher: Fetcher,
    now: datetime,
    *,
    limit: int = 100,
) -> int:
    """POST the deliveries due at ``now`` (oldest first) and record each outcome.

    The store is read and written in threads, the POSTs made on the loop.

    Returns:
        How many were delivered.
    """
    delivered = 0
    due = await asyncio.to_thread(store.push.due_deliveries, now, limit=limit)
    for delivery in due:
        target = _target(topics, delivery)
        if target is None:
            await asyncio.to_thread(
                store.push.record_attempt,
                delivery.id,
                at=now,
                status=None,
                error="the target is no longer configured",
                delivered=False,
                next_attempt_at=None,
            )
            continue
        ok = await _post(store, fetcher, delivery, target, now)
        delivered += ok
    return delivered


async def _post(
    store: Store, fetcher: Fetcher, delivery: Delivery, target: WebhookTarget, now: datetime
) -> bool:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Aggregator-Signature": sign(target.secret, body),
        "Idempotency-Key": delivery.story_id,
        "X-Aggregator-Topic": delivery.topic,
    }
    status: int | None = None
    error: str | None = None
    try:
        status = await fetcher.post(
            target.url, body, headers=headers, source=f"{delivery.topic}: webhook", timeout=TIMEOUT
        )
    except AggregatorError as exc:
        error = str(exc)
    ok = status is not None and 200 <= status < 300
    if not ok and error is None:
        error = f"{target.url}: HTTP {status}"
    later = None if ok else retry_at(delivery, now)
    if not ok:
        log.warning(
            "%s: webhook for %s failed (attempt %d): %s%s",
            delivery.topic,
            delivery.story_id,
            delivery.attempts + 1,
            error,
            "; giving up" if later is None else "",
        )
    await asyncio.to_thread(
        store.push.record_attempt,
        delivery.id,
        at=now,
        status=status,
        error=error,
        delivered=ok,
        next_attempt_at=later,
    )
    return ok
