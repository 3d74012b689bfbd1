"""``interval: auto``: the next polling interval from a source's own rhythm (pure).

A source's rhythm is how many entries it publishes in each hour of the day
(UTC), averaged over the days observed (at most :data:`WINDOW`), read from its
entries' publication times. Polls are then spaced by the square-root rule:
the time to the next poll is where the integral of ``sqrt(rate)`` since this
poll reaches a constant ``c``. For entries arriving at random with a rate
that varies by hour, that spacing gives the smallest average delay for a
given number of polls (a poll every ``d`` costs ``1/d`` polls per hour and
delays the ``rate * d`` entries it finds by ``d/2`` on average; minimising
the sum gives ``d ~ 1/sqrt(rate)``). ``c`` is chosen, by bisection over one
modelled day, so that the expected average delay equals what polling every
``base`` (the source's configured ``interval``) gives, ``base / 2``, less
5% (:data:`EARLIER`). So a
source that sleeps at night is not polled at night, and a source busy at
9:00 and quiet at 15:00 is polled more often at 9:00, for the same average
delay as a fixed interval.

Two guards: an interval never runs past the end of a busy stretch into a
quiet one (the entries of the last busy minutes would wait all night), and
a source with fewer than :data:`MIN_ENTRIES` dated entries in the window is
polled at ``base`` ("learning"). A source that publishes at uniformly random
times all day gains nothing here, and cannot: no schedule finds its entries
as early on average with fewer polls (``docs/polling.md``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.model import utc

__all__ = [
    "EARLIER",
    "MIN_ENTRIES",
    "WINDOW",
    "Rhythm",
    "auto_interval",
    "auto_jitter",
    "hourly_rates",
]

#: how far back the rhythm looks
WINDOW = timedelta(days=28)
#: fewer dated entries than this in the window: poll at the base interval
MIN_ENTRIES = 10
#: the average delay aimed at, as a share of fixed polling's ``base / 2``: a
#: little earlier, to absorb the noise of a rhythm read from a few weeks
EARLIER = 0.95
#: an hour with fewer entries than this a day on average is quiet
QUIET = 1 / 7
#: the longest jitter an auto interval gets: a tenth of a night would miss the morning
LONGEST_JITTER = timedelta(minutes=3)
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Rhythm:
    """The interval ``interval: auto`` chose, and why (for ``sources`` and ``status``)."""

    interval: timedelta
    reason: str


def hourly_rates(times: Iterable[datetime], now: datetime) -> tuple[tuple[float, ...], int]:
    """Entries per hour for each hour of the day (UTC), over the days observed.

    Args:
        times: the source's entries' publication times (aware); those outside
            ``(now - WINDOW, now]`` are left out.
        now: the current time.

    Returns:
        24 rates (entries per hour), and how many entries they were read from.
    """
    now = utc(now)
    start = now - WINDOW
    kept = [utc(t) for t in times if start < utc(t) <= now]
    counts = [0] * 24
    for t in kept:
        counts[t.hour] += 1
    if not kept:
        return tuple(0.0 for _ in counts), 0
    days = max(1.0, (now - min(kept)).total_seconds() / _DAY)
    return tuple(c / days for c in counts), len(kept)


def _walk(rates: tuple[float, ...], start: float, c: float, longest: float) -> float:
    """Seconds from ``start`` (seconds into a day) until ``sqrt(rate)`` integrates to ``c``."""
    need = c * _HOUR
    elapsed = 0.0
    while elapsed < longest:
        at = start + elapsed
        hour = int(at % _DAY // _HOUR)
        left = _HOUR - at % _HOUR
        root = math.sqrt(rates[hour])
        if root * left >= need:
            return elapsed + need / root
        need -= root * left
        elapsed += left
        if rates[hour] >= QUIET and rates[(hour + 1) % 24] < QUIET:
            return elapsed  # the end of a busy stretch: look once more before the quiet
    return longest


def _expected_delay(rates: tuple[float, ...], c: float, shortest: float) -> float:
    """The average delay (seconds) of one modelled day's entries when polls are spaced by ``c``."""
    polls = [0.0]
    while polls[-1] < _DAY:
        polls.append(polls[-1] + max(_walk(rates, polls[-1], c, _DAY), shortest))
    total = found = 0.0
    for begin, end in itertools.pairwise(polls):
        at = begin
        while at < end:
            stop = min(end, (at // _HOUR + 1) * _HOUR)
            rate = rates[int(at % _DAY // _HOUR)] / _HOUR
            total += rate * ((end - at) ** 2 - (end - stop) ** 2) / 2
            found += rate * (stop - at)
            at = stop
    return total / found if found else 0.0


def _calibrate(rates: tuple[float, ...], target: float, shortest: float) -> float:
    """The spacing constant whose modelled average delay is ``target`` seconds (bisection)."""
    low, high = 1e-3, 1e3
    for _ in range(40):
        middle = math.sqrt(low * high)
        if _expected_delay(rates, middle, shortest) > target:
            high = middle
        else:
            low = middle
    return low


def auto_interval(
    times: Iterable[datetime],
    now: datetime,
    *,
    base: timedelta,
    min_interval: timedelta,
    max_interval: timedelta,
) -> Rhythm:
    """The interval to the next poll of an ``interval: auto`` source.

    Args:
        times: publication times of the source's entries (any order, aware).
        now: the time of the poll just made.
        base: the source's configured interval: until the rhythm is known the
            interval, and after that the fixed polling whose average delay
            the rhythm matches.
        min_interval: the shortest interval returned.
        max_interval: the longest interval returned.

    Returns:
        The interval (within ``min_interval``..``max_interval``) and a short
        reason such as ``"rhythm: 0.4 entries/h now, 18 polls/day"``.
    """
    now = utc(now)
    rates, seen = hourly_rates(times, now)
    if seen < MIN_ENTRIES:
        interval = min(max(base, min_interval), max_interval)
        return Rhythm(interval, f"learning: {seen} dated entries in {WINDOW.days} days")
    shortest = min_interval.total_seconds()
    longest = max_interval.total_seconds()
    c = _calibrate(rates, EARLIER * base.total_seconds() / 2, shortest)
    start = now.hour * _HOUR + now.minute * 60 + now.second + now.microsecond / 1e6
    seconds = min(max(_walk(rates, start, c, longest), shortest), longest)
    per_day = _polls_per_day(rates, c, shortest)
    reason = f"rhythm: {rates[now.hour]:.1f} entries/h at {now.hour:02d}h, ~{per_day} polls/day"
    return Rhythm(timedelta(seconds=round(seconds)), reason)


def _polls_per_day(rates: tuple[float, ...], c: float, shortest: float) -> int:
    at, polls = 0.0, 0
    while at < _DAY:
        at += max(_walk(rates, at, c, _DAY), shortest)
        polls += 1
    return polls


def auto_jitter(interval: timedelta) -> float:
    """The jitter fraction for an auto ``interval``: 10%, but never more than 3 minutes."""
    seconds = max(interval.total_seconds(), 1.0)
    return min(0.1, LONGEST_JITTER.total_seconds() / seconds)
