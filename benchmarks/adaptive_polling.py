"""Simulated weeks of polling: ``interval: auto`` against a fixed 30-minute interval.

Runs the real policy (``aggregator.sources.rhythm.auto_interval`` inside
``aggregator.sources.schedule.next_due``, jitter included) on a fake clock over
sources that publish 30 entries a day between 07:00 and 19:00 and none at
night. Each source gets four weeks of history (what its feed's back catalogue
and earlier polls give), then one measured week. Prints, per source shape,
the polls made and the average delay between an entry's publication and the
poll that finds it::

    python benchmarks/adaptive_polling.py [--seeds N]

``tests/test_rhythm.py`` runs the ``rush-hours`` week and asserts the targets
(at most 40% of the polls, no later on average).
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aggregator.model import Outcome
from aggregator.sources.rhythm import auto_interval, auto_jitter
from aggregator.sources.schedule import next_due

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
HISTORY_DAYS = 28
FIXED = timedelta(minutes=30)
MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=24)
_HOUR = 3600.0

#: (first hour, last hour + 1, share of the day's entries) of a news site's rushes
RUSHES = ((7, 9, 0.4), (12, 13, 0.2), (17, 19, 0.3))


def _rush_hours(rng: random.Random) -> float:
    """Seconds into the day of one entry: mostly in the rushes, the rest spread 07-19."""
    pick = rng.random()
    for first, end, share in RUSHES:
        if pick < share:
            return rng.uniform(first * _HOUR, end * _HOUR)
        pick -= share
    return rng.uniform(7 * _HOUR, 19 * _HOUR)


def _uniform(rng: random.Random) -> float:
    return rng.uniform(7 * _HOUR, 19 * _HOUR)


SHAPES: dict[str, Callable[[random.Random], float]] = {
    "rush-hours": _rush_hours,
    "uniform 07-19": _uniform,
}


def entries(shape: str, days: int, seed: int, per_day: int = 30) -> list[datetime]:
    """Publication times of ``per_day`` entries a day for ``days`` days, sorted."""
    rng = random.Random(seed)
    draw = SHAPES[shape]
    out = []
    for day in range(days):
        midnight = START + timedelta(days=day)
        out += [midnight + timedelta(seconds=draw(rng)) for _ in range(per_day)]
    return sorted(out)


@dataclass(frozen=True)
class Week:
    """One simulated week's polls and the average delay of the entries they found."""

    polls: int
    mean_delay: timedelta
    found: int


Policy = Callable[[list[datetime], datetime], timedelta]


def fixed(seen: list[datetime], now: datetime) -> timedelta:
    return FIXED


def auto(seen: list[datetime], now: datetime) -> timedelta:
    rhythm = auto_interval(
        seen, now, base=FIXED, min_interval=MIN_INTERVAL, max_interval=MAX_INTERVAL
    )
    return rhythm.interval


def simulate(times: list[datetime], policy: Policy, *, auto_jittered: bool = False) -> Week:
    """Poll over the week after :data:`HISTORY_DAYS`, the clock moved by ``next_due`` alone."""
    begin = START + timedelta(days=HISTORY_DAYS)
    end = begin + timedelta(days=7)
    now = begin
    seen = [t for t in times if t <= now]
    cursor = len(seen)
    delays: list[float] = []
    polls = 0
    while now < end:
        polls += 1
        upto = bisect.bisect_right(times, now)
        for t in times[cursor:upto]:
            delays.append((now - t).total_seconds())
            seen.append(t)
        cursor = upto
        interval = policy(seen, now)
        now = next_due(
            now=now,
            interval=interval,
            outcome=Outcome.OK,
            consecutive_failures=0,
            min_interval=MIN_INTERVAL,
            max_interval=MAX_INTERVAL,
            jitter=auto_jitter(interval) if auto_jittered else 0.1,
            seed="simulated",
        )
    return Week(polls, timedelta(seconds=statistics.fmean(delays)), len(delays))


def _minutes(delay: timedelta) -> float:
    return delay.total_seconds() / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'source':<16} {'seed':>4} {'fixed polls':>11} {'auto polls':>10} {'ratio':>6} "
        f"{'fixed delay':>11} {'auto delay':>10}"
    )
    for shape in SHAPES:
        weeks = []
        for seed in range(args.seeds):
            times = entries(shape, HISTORY_DAYS + 7, seed)
            a = simulate(times, fixed)
            b = simulate(times, auto, auto_jittered=True)
            weeks.append((a, b))
            print(
                f"{shape:<16} {seed:>4} {a.polls:>11} {b.polls:>10} {b.polls / a.polls:>6.2f} "
                f"{_minutes(a.mean_delay):>9.1f} m {_minutes(b.mean_delay):>8.1f} m"
            )
        polls = sum(b.polls for _, b in weeks) / sum(a.polls for a, _ in weeks)
        late_a = statistics.fmean(_minutes(a.mean_delay) for a, _ in weeks)
        late_b = statistics.fmean(_minutes(b.mean_delay) for _, b in weeks)
        print(
            f"{shape:<16} all {polls:>26.2f} {late_a:>9.1f} m {late_b:>8.1f} m"
            f"   (auto: {polls:.0%} of the polls, {late_b - late_a:+.1f} min on average)"
        )


if __name__ == "__main__":
    main()
