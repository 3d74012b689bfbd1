"""How often a source is polled now, and why: fixed, its rhythm (``interval: auto``), or WebSub.

A source whose WebSub subscription is active is polled only at
``websub.fallback_interval`` (the hub pushes its new entries); an
``interval: auto`` source at the interval its rhythm gives
(:mod:`aggregator.sources.rhythm`); any other at its ``interval``. Cache headers and
``<ttl>`` may still lengthen it (:func:`aggregator.sources.schedule.next_due`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aggregator.config import Config
from aggregator.config.units import format_duration
from aggregator.model import Item, SourceSpec
from aggregator.sources.rhythm import WINDOW, auto_interval, auto_jitter
from aggregator.store import Store

__all__ = [
    "Cadence",
    "cadence_of",
    "cadences",
    "fixed_cadence",
    "reads_store",
    "subscription_rows",
    "webhook_rows",
    "websub_active",
]


@dataclass(frozen=True, slots=True)
class Cadence:
    """The interval to schedule a source's next poll with, and why."""

    interval: timedelta
    #: the floor and ceiling given to ``next_due``
    min_interval: timedelta
    max_interval: timedelta
    #: the jitter fraction given to ``next_due``
    jitter: float
    #: one line for ``sources`` and ``status``
    reason: str


def websub_active(store: Store, source: str, now: datetime) -> str | None:
    """The hub pushing the source's entries, when its subscription is active and leased."""
    sub = store.push.subscription_of(source)
    if sub is None or sub.state != "active" or sub.lease_until is None or sub.lease_until <= now:
        return None
    return sub.hub


def reads_store(spec: SourceSpec, config: Config) -> bool:
    """Whether the source's cadence depends on the store (WebSub or ``interval: auto``)."""
    return spec.adaptive or (config.websub.subscribe and spec.websub)


def fixed_cadence(spec: SourceSpec, config: Config) -> Cadence:
    """The cadence of a source polled every ``interval``."""
    floor = min(config.min_interval, spec.interval)
    why = f"fixed: every {format_duration(spec.interval)}"
    return Cadence(spec.interval, floor, config.max_interval, 0.1, why)


def cadence_of(
    spec: SourceSpec,
    config: Config,
    store: Store,
    now: datetime,
    fresh: Iterable[Item] = (),
) -> Cadence:
    """The source's cadence now (blocking: it reads the store).

    Args:
        spec: the source.
        config: the config (``min_interval``, ``max_interval``, ``websub``).
        store: the store (its subscription, its entries' publication times).
        now: the time of the poll just made.
        fresh: items this poll read, not yet written (their times count too).
    """
    fixed = fixed_cadence(spec, config)
    if config.websub.subscribe and spec.websub:
        hub = websub_active(store, spec.name, now)
        if hub is not None:
            every = config.websub.fallback_interval
            why = f"WebSub: {hub} pushes; polled every {format_duration(every)} as a fallback"
            return Cadence(every, fixed.min_interval, fixed.max_interval, 0.1, why)
    if not spec.adaptive:
        return fixed
    times = store.published_times(spec.name, now - WINDOW)
    times.update({item.identity: item.published for item in fresh})
    rhythm = auto_interval(
        times.values(),
        now,
        base=spec.interval,
        min_interval=config.min_interval,
        max_interval=config.max_interval,
    )
    jitter = auto_jitter(rhythm.interval)
    return Cadence(
        rhythm.interval, config.min_interval, config.max_interval, jitter, f"auto, {rhythm.reason}"
    )


def cadences(config: Config, store: Store, now: datetime) -> dict[str, dict[str, Any]]:
    """Source name -> its interval now (seconds), why, and its WebSub subscription's state.

    For ``aggregator sources`` and ``status`` (blocking: it reads the store).
    """
    subs = {s.source: s for s in store.push.subscriptions()}
    rows = {}
    for spec in config.sources:
        cadence = cadence_of(spec, config, store, now)
        sub = subs.get(spec.name)
        websub = None
        if sub is not None:
            websub = {
                "hub": sub.hub,
                "topic": sub.topic,
                "state": sub.state,
                "lease_until": sub.lease_until.isoformat() if sub.lease_until else None,
                "error": sub.last_error,
            }
        rows[spec.name] = {
            "interval": int(cadence.interval.total_seconds()),
            "why": cadence.reason,
            "websub": websub,
        }
    return rows


def webhook_rows(store: Store) -> list[dict[str, Any]]:
    """Each topic's webhook targets: deliveries delivered, pending and given up, the last error."""
    return [
        {
            "topic": s.topic,
            "target": s.target,
            "delivered": s.delivered,
            "pending": s.pending,
            "failed": s.failed,
            "last_status": s.last_attempt_status,
            "last_error": s.last_error,
        }
        for s in store.push.delivery_summaries()
    ]


def subscription_rows(store: Store) -> list[dict[str, Any]]:
    """Each source's WebSub subscription: its hub, state, lease end and last error."""
    return [
        {
            "source": s.source,
            "hub": s.hub,
            "state": s.state,
            "lease_until": s.lease_until,
            "error": s.last_error,
        }
        for s in store.push.subscriptions()
    ]
