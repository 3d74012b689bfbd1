"""A source's health from its state and poll history (pure): ok, failing, gone, silent...

The rules, first match wins:

=============  ==============================================================
``gone``       the source answered 410 Gone: put to rest, polling stopped
``disabled``   ``enabled: false`` in the config, or put to rest after failing
               every poll for ``disable_after``: never polled
``new``        never polled
``failing``    the last :data:`FAILING_AFTER` polls or more failed
``backing off`` the last poll failed (fewer times), or the server asked us to
               wait (``Retry-After`` still ahead): polls come slower
``moved``      a permanent redirect was confirmed (the config still names the
               old URL) or is being seen
``silent``     new entries used to come at a rhythm, and successful polls have
               found none for more than :data:`SILENT_FACTOR` usual gaps
``ok``         anything else
=============  ==============================================================
"""

from __future__ import annotations

import enum
import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta

from aggregator.model import Outcome, Poll, SourceState

__all__ = [
    "FAILING_AFTER",
    "MIN_GAPS",
    "SILENT_FACTOR",
    "Health",
    "classify",
    "entries_per_day",
    "trailing_failures",
    "usual_gap",
]

#: consecutive failed polls after which a source is failing (before: backing off)
FAILING_AFTER = 3
#: a source is silent after this many usual gaps without new entries
SILENT_FACTOR = 3.0
#: gaps between polls that brought new entries needed before a rhythm is known
MIN_GAPS = 3
#: how far back entries per day are counted
RATE_WINDOW = timedelta(days=7)

_FAILED = (Outcome.ERROR, Outcome.GONE)
_SUCCEEDED = (Outcome.OK, Outcome.NOT_MODIFIED)


class Health(enum.StrEnum):
    """What the operator should know about a source, in one word."""

    NEW = "new"
    DISABLED = "disabled"
    OK = "ok"
    FAILING = "failing"
    BACKING_OFF = "backing off"
    MOVED = "moved"
    GONE = "gone"
    SILENT = "silent"


def trailing_failures(history: Sequence[Poll]) -> int:
    """Failed polls at the end of ``history`` (oldest first), since the last success."""
    count = 0
    for poll in reversed(history):
        if poll.outcome not in _FAILED:
            break
        count += 1
    return count


def usual_gap(history: Sequence[Poll]) -> timedelta | None:
    """The median time between polls that brought new entries; None without a rhythm yet."""
    times = [p.at for p in history if p.new > 0]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if len(gaps) < MIN_GAPS:
        return None
    return statistics.median_low(gaps)


def _silent(history: Sequence[Poll]) -> bool:
    gap = usual_gap(history)
    if gap is None:
        return False
    last_new = max(p.at for p in history if p.new > 0)
    looked = [p.at for p in history if p.outcome in _SUCCEEDED and p.at > last_new]
    # Silence is measured by polls that looked and found nothing, not by the
    # clock: a daemon that was down says nothing about the source.
    return bool(looked) and max(looked) - last_new > gap * SILENT_FACTOR


def classify(
    state: SourceState | None,
    configured: str,
    history: Sequence[Poll],
    *,
    now: datetime,
    enabled: bool = True,
) -> Health:
    """The source's health (see the module's table).

    Args:
        state: the stored fetch state; None before the first sync.
        configured: the location in the config (a moved source's state differs).
        history: the source's polls, oldest first.
        now: the current time (aware).
        enabled: False for ``enabled: false`` in the config.

    Returns:
        One :class:`Health`.
    """
    last = history[-1].outcome if history else None
    if (state is not None and state.gone) or last is Outcome.GONE:
        return Health.GONE  # put to rest too, but "gone" says more
    if not enabled or (state is not None and state.disabled_at is not None):
        return Health.DISABLED
    if not history and (state is None or state.last_attempt_at is None):
        return Health.NEW
    failures = max(trailing_failures(history), state.consecutive_failures if state else 0)
    if failures >= FAILING_AFTER:
        return Health.FAILING
    waiting = state is not None and state.retry_after is not None and state.retry_after > now
    if failures or waiting:
        return Health.BACKING_OFF
    if state is not None and (state.location != configured or state.moved_to):
        return Health.MOVED
    if _silent(history):
        return Health.SILENT
    return Health.OK


def entries_per_day(history: Sequence[Poll], *, now: datetime) -> float:
    """New entries per day over the last week of ``history`` (or the part it covers)."""
    recent = [p for p in history if p.at >= now - RATE_WINDOW]
    if not recent:
        return 0.0
    span = max(now - recent[0].at, timedelta(days=1))
    return sum(p.new for p in recent) / (span / timedelta(days=1))
