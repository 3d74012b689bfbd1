"""The operator's view: a snapshot of sources' health, topics and recent activity (pure).

``/status`` and ``aggregator status`` show the same :class:`Status`, built
from what the store holds (:func:`aggregator.update.read_status`); the
daemon adds what only it knows (recent publish times).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aggregator.errors import redact_urls
from aggregator.model import Outcome, Poll, SourceSpec, SourceState, TopicSpec
from aggregator.status.sourcehealth import Health, classify, entries_per_day

__all__ = [
    "HourCount",
    "SourceStatus",
    "Status",
    "TopicStatus",
    "build",
    "hourly",
    "sparkline",
    "to_json",
]

#: hours covered by the site-wide charts
CHART_HOURS = 48


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source as the operator sees it."""

    name: str
    #: ``url`` or ``files``
    kind: str
    health: Health
    last_success: datetime | None
    next_due: datetime | None
    #: consecutive failures
    failures: int
    #: the last error, URL secrets redacted
    error: str | None
    entries_per_day: float
    #: polls, oldest first
    history: tuple[Poll, ...]
    #: the problems of the last read (a seed file that is empty), URL secrets redacted
    problems: tuple[str, ...] = ()
    #: where a moved source's permanent redirect leads (confirmed, or being confirmed), redacted
    moved_to: str | None = None
    #: why it is disabled ("disabled in the config", or why it was put to rest), redacted
    disabled: str | None = None
    #: when it was put to rest (None: active, or disabled in the config)
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TopicStatus:
    """One topic: its stories."""

    name: str
    stories: int
    private: bool


@dataclass(frozen=True, slots=True)
class HourCount:
    """Polls by outcome and entries ingested during one hour."""

    #: the hour's start
    hour: datetime
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    #: new and updated entries
    entries: int = 0


@dataclass(frozen=True, slots=True)
class Status:
    """Everything the status page and ``aggregator status`` show."""

    at: datetime
    sources: tuple[SourceStatus, ...]
    topics: tuple[TopicStatus, ...]
    #: the last :data:`CHART_HOURS` hours, oldest first
    hours: tuple[HourCount, ...]
    #: (when, seconds) of recent publishes, oldest first (the daemon's alone)
    publishes: tuple[tuple[datetime, float], ...] = ()

    def counts(self) -> dict[str, int]:
        """Sources per health, for the summary line."""
        found: dict[str, int] = {}
        for source in self.sources:
            found[source.health.value] = found.get(source.health.value, 0) + 1
        return found


def build(
    sources: Sequence[SourceSpec],
    topics: Sequence[TopicSpec],
    *,
    states: Mapping[str, SourceState],
    history: Mapping[str, Sequence[Poll]],
    topic_counts: Mapping[str, int],
    now: datetime,
    publishes: Iterable[tuple[datetime, float]] = (),
) -> Status:
    """The snapshot of the configured sources and topics, from what the store holds.

    Args:
        sources: the configured sources, in config order.
        topics: the configured topics.
        states: each source's stored fetch state, by name.
        history: each source's polls, oldest first, by name.
        topic_counts: stories per topic.
        now: the time of the snapshot (aware).
        publishes: (when, seconds) of the daemon's recent publishes.
    """
    rows = []
    for spec in sources:
        state = states.get(spec.name)
        polls = tuple(history.get(spec.name, ()))
        rows.append(
            SourceStatus(
                name=spec.name,
                kind=spec.kind.value,
                health=classify(state, spec.location, polls, now=now, enabled=spec.enabled),
                last_success=state.last_success_at if state else None,
                # A gone or disabled source is not polled: no due time (None), not the end of time.
                next_due=state.next_due_at if state is not None and _polled(spec, state) else None,
                failures=state.consecutive_failures if state else 0,
                error=redact_urls(state.last_error) if state and state.last_error else None,
                entries_per_day=entries_per_day(polls, now=now),
                history=polls,
                problems=tuple(redact_urls(p) for p in state.problems) if state else (),
                moved_to=_moved_to(state, spec.location),
                disabled=_disabled(spec, state),
                disabled_at=state.disabled_at if state else None,
            )
        )
    kept = tuple(TopicStatus(t.name, topic_counts.get(t.name, 0), t.private) for t in topics)
    all_polls = [p for s in rows for p in s.history]
    return Status(now, tuple(rows), kept, hourly(all_polls, now=now), tuple(publishes))


def hourly(
    polls: Iterable[Poll], *, now: datetime, hours: int = CHART_HOURS
) -> tuple[HourCount, ...]:
    """Polls by outcome and entries per hour over the last ``hours`` hours, oldest first."""
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    slots = [[0, 0, 0, 0] for _ in range(hours)]
    for poll in polls:
        index = int((poll.at - start) // timedelta(hours=1))
        if not 0 <= index < hours:
            continue
        slot = slots[index]
        if poll.outcome is Outcome.OK:
            slot[0] += 1
        elif poll.outcome is Outcome.NOT_MODIFIED:
            slot[1] += 1
        else:
            slot[2] += 1
        slot[3] += poll.new + poll.updated
    return tuple(HourCount(start + timedelta(hours=i), *slot) for i, slot in enumerate(slots))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _poll_json(poll: Poll) -> dict[str, Any]:
    return {
        "at": poll.at.isoformat(),
        "outcome": poll.outcome.value,
        "status": poll.status,
        "seconds": round(poll.seconds, 3),
        "bytes": poll.received,
        "new": poll.new,
        "updated": poll.updated,
    }


def _polled(spec: SourceSpec, state: SourceState | None) -> bool:
    return spec.enabled and state is not None and not state.gone and state.disabled_at is None


def _disabled(spec: SourceSpec, state: SourceState | None) -> str | None:
    """Why the source is not polled: put to rest (with the reason), or disabled in the config."""
    if state is not None and state.disabled_at is not None:
        return redact_urls(f"put to rest: {state.disabled_reason or 'no reason recorded'}")
    return None if spec.enabled else "disabled in the config (enabled: false)"


def _moved_to(state: SourceState | None, configured: str) -> str | None:
    """The URL a permanent redirect sent the source to: pending confirmation, or confirmed."""
    if state is None:
        return None
    if state.moved_to:
        return redact_urls(state.moved_to)
    return redact_urls(state.location) if state.location != configured else None


def to_json(status: Status) -> dict[str, Any]:
    """The JSON shape of ``aggregator status --json`` (each source's whole history)."""
    return {
        "at": status.at.isoformat(),
        "sources": [
            {
                "name": s.name,
                "kind": s.kind,
                "state": s.health.value,
                "last_success": _iso(s.last_success),
                "next_due": _iso(s.next_due),
                "failures": s.failures,
                "error": s.error,
                "entries_per_day": round(s.entries_per_day, 2),
                "history": [_poll_json(p) for p in s.history],
                "problems": list(s.problems),
                "moved_to": s.moved_to,
                "disabled": s.disabled,
                "disabled_at": _iso(s.disabled_at),
            }
            for s in status.sources
        ],
        "topics": [
            {"name": t.name, "stories": t.stories, "private": t.private} for t in status.topics
        ],
    }


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(history: Sequence[Poll], *, last: int = 24) -> list[tuple[str, str]]:
    """The last ``last`` polls as (block character, outcome class) pairs, oldest first.

    A block's height is the poll's duration against the longest shown; a
    failed poll is a full block of class ``fail`` (``ok`` and ``nm`` otherwise),
    so the caller can colour it.
    """
    polls = list(history)[-last:]
    peak = max((p.seconds for p in polls), default=0.0) or 1.0
    cells = []
    for poll in polls:
        if poll.outcome in (Outcome.ERROR, Outcome.GONE):
            cells.append((_BLOCKS[-1], "fail"))
            continue
        level = min(int(poll.seconds / peak * (len(_BLOCKS) - 1) + 0.5), len(_BLOCKS) - 1)
        cells.append((_BLOCKS[level], "ok" if poll.outcome is Outcome.OK else "nm"))
    return cells
