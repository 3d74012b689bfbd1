"""Push state: WebSub subscriptions, and webhook deliveries with their cursors per topic target.

Deliveries are rows: a story that joined a topic after the target's cursor
is queued once (unique by topic, target and story), with the body it will be
sent with; each attempt's outcome is written on the row; a delivered row is
never sent again. A daemon that restarts finds everything still to send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aggregator.model import utc
from aggregator.store import stamps
from aggregator.store.database import Database
from aggregator.store.schema import (
    story_topics,
    webhook_cursors,
    webhook_deliveries,
    websub_subscriptions,
)

__all__ = ["Delivery", "DeliverySummary", "PushState", "Subscription"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A source's subscription to its WebSub hub."""

    source: str
    hub: str
    topic: str
    #: the unguessable last segment of the callback URL
    callback: str
    secret: str
    #: requested, active, unsubscribing or failed
    state: str
    #: the mode the hub's next verification must be for (subscribe or unsubscribe)
    mode: str
    requested_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One story's notification to one webhook target."""

    id: int
    topic: str
    target: str
    story_id: str
    body: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    """A webhook target's deliveries, for ``status``."""

    topic: str
    target: str
    delivered: int
    pending: int
    failed: int
    last_attempt_status: int | None
    last_error: str | None


def _subscription(row: Any) -> Subscription:
    return Subscription(**dict(row._mapping))


def _delivery(row: Any) -> Delivery:
    return Delivery(**dict(row._mapping))


class PushState:
    """Reading and writing the push tables, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- WebSub subscriptions ----------------------------------------------------

    def subscriptions(self) -> list[Subscription]:
        """Every subscription row, by source."""
        query = sa.select(websub_subscriptions).order_by(websub_subscriptions.c.source)
        with self._db.read() as conn:
            return [_subscription(r) for r in conn.execute(query)]

    def subscription(self, callback: str) -> Subscription | None:
        """The subscription whose callback segment is ``callback``."""
        query = sa.select(websub_subscriptions).where(websub_subscriptions.c.callback == callback)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return _subscription(row) if row is not None else None

    def subscription_of(self, source: str) -> Subscription | None:
        """The source's subscription row, if it has one."""
        query = sa.select(websub_subscriptions).where(websub_subscriptions.c.source == source)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return _subscription(row) if row is not None else None

    def save_subscription(self, sub: Subscription) -> None:
        """Insert or replace the source's subscription row."""
        values = {f: getattr(sub, f) for f in Subscription.__dataclass_fields__}
        table = websub_subscriptions
        with self._db.write() as conn:
            conn.execute(table.delete().where(table.c.source == sub.source))
            conn.execute(table.insert().values(**values))

    def delete_subscription(self, source: str) -> None:
        """Forget the source's subscription (the hub was told, or never knew)."""
        table = websub_subscriptions
        with self._db.write() as conn:
            conn.execute(table.delete().where(table.c.source == source))

    # -- webhook deliveries --------------------------------------------------------

    def new_members(self, topic: str, target: str) -> tuple[int, list[str]]:
        """Stories that joined ``topic`` since ``target``'s cursor, oldest first.

        A target seen for the first time starts at the store's current stamp:
        it is told of stories from now on, not of the topic's back catalogue.

        Returns:
            The stamp the returned stories go up to (pass it to :meth:`queue`),
            and their ids.
        """
        cursor = webhook_cursors
        with self._db.write() as conn:
            seq = conn.execute(
                sa.select(cursor.c.seq).where(
                    (cursor.c.topic == topic) & (cursor.c.target == target)
                )
            ).scalar()
            if seq is None:
                now = stamps.current(conn)
                conn.execute(cursor.insert().values(topic=topic, target=target, seq=now))
                return now, []
            rows = conn.execute(
                sa.select(story_topics.c.story_id, story_topics.c.seq)
                .where((story_topics.c.topic == topic) & (story_topics.c.seq > seq))
                .order_by(story_topics.c.seq, story_topics.c.story_id)
            ).all()
        upto = max((int(r[1]) for r in rows), default=int(seq))
        return upto, [str(r[0]) for r in rows]

    def queue(
        self,
        topic: str,
        target: str,
        bodies: Sequence[tuple[str, str]],
        *,
        upto: int,
        now: datetime,
    ) -> int:
        """Queue one delivery per ``(story_id, body)`` and move the target's cursor to ``upto``.

        One transaction: a crash queues all of them with the cursor moved, or none.
        A story already queued for the target is not queued again.

        Returns:
            How many deliveries were queued.
        """
        now = utc(now)
        table = webhook_deliveries
        with self._db.write() as conn:
            known = {
                str(r[0])
                for r in conn.execute(
                    sa.select(table.c.story_id).where(
                        (table.c.topic == topic)
                        & (table.c.target == target)
                        & table.c.story_id.in_([s for s, _ in bodies] or [""])
                    )
                )
            }
            rows = [
                {
                    "topic": topic,
                    "target": target,
                    "story_id": story_id,
                    "body": body,
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for story_id, body in dict(bodies).items()
                if story_id not in known
            ]
            if rows:
                conn.execute(table.insert(), rows)
            conn.execute(
                webhook_cursors.update()
                .where((webhook_cursors.c.topic == topic) & (webhook_cursors.c.target == target))
                .values(seq=upto)
            )
        return len(rows)

    def due_deliveries(self, now: datetime, *, limit: int = 100) -> list[Delivery]:
        """Deliveries whose next attempt is due, oldest first."""
        table = webhook_deliveries
        query = (
            sa.select(table)
            .where(table.c.next_attempt_at.is_not(None) & (table.c.next_attempt_at <= utc(now)))
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def deliveries(self) -> list[Delivery]:
        """Every delivery row, by id (tests and tools)."""
        with self._db.read() as conn:
            query = sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id)
            return [_delivery(r) for r in conn.execute(query)]

    def record_attempt(
        self,
        delivery_id: int,
        *,
        at: datetime,
        status: int | None,
        error: str | None,
        delivered: bool,
        next_attempt_at: datetime | None,
    ) -> None:
        """Write one attempt's outcome: delivered, or when to try again (None: given up)."""
        table = webhook_deliveries
        values: dict[str, Any] = {
            "attempts": table.c.attempts + 1,
            "last_status": status,
            "last_error": error,
            "next_attempt_at": None if delivered else next_attempt_at,
        }
        if delivered:
            values["delivered_at"] = utc(at)
        with self._db.write() as conn:
            conn.execute(table.update().where(table.c.id == delivery_id).values(**values))

    def delivery_summaries(self) -> list[DeliverySummary]:
        """Per topic and target: delivered, pending and failed counts, the last outcome."""
        out = []
        for (topic, target), rows in self._by_target().items():
            last = max(rows, key=lambda d: (d.attempts > 0, d.id))
            out.append(
                DeliverySummary(
                    topic=topic,
                    target=target,
                    delivered=sum(1 for d in rows if d.delivered_at is not None),
                    pending=sum(1 for d in rows if d.next_attempt_at is not None),
                    failed=sum(
                        1 for d in rows if d.delivered_at is None and d.next_attempt_at is None
                    ),
                    last_attempt_status=last.last_status,
                    last_error=last.last_error if last.delivered_at is None else None,
                )
            )
        return out

    def _by_target(self) -> dict[tuple[str, str], list[Delivery]]:
        found: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in self.deliveries():
            found.setdefault((delivery.topic, delivery.target), []).append(delivery)
        return found
