"""``interval: auto``: the rhythm policy, and a simulated week against fixed 30-minute polling."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest

from aggregator.sources.rhythm import MIN_ENTRIES, auto_interval, auto_jitter, hourly_rates

from .conftest import REPO

BASE = timedelta(minutes=30)
FLOOR = timedelta(minutes=5)
CEILING = timedelta(hours=24)


def _simulation() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "adaptive_polling", REPO / "benchmarks" / "adaptive_polling.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


def _daytime(days: int, per_day: int = 24) -> list[datetime]:
    """``per_day`` entries a day, evenly between 07:00 and 19:00 UTC."""
    start = datetime(2026, 11, 2, tzinfo=UTC)
    step = timedelta(hours=12) / per_day
    return [
        start + timedelta(days=d, hours=7) + step * i for d in range(days) for i in range(per_day)
    ]


def _auto(times: list[datetime], now: datetime) -> timedelta:
    return auto_interval(times, now, base=BASE, min_interval=FLOOR, max_interval=CEILING).interval


def test_a_new_source_is_polled_at_its_base_interval_while_learning() -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    few = [now - timedelta(hours=h) for h in range(MIN_ENTRIES - 1)]
    rhythm = auto_interval(few, now, base=BASE, min_interval=FLOOR, max_interval=CEILING)
    assert rhythm.interval == BASE
    assert rhythm.reason.startswith("learning")


def test_a_source_asleep_at_night_is_not_polled_at_night() -> None:
    times = _daytime(14)
    evening = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
    wake = evening + _auto(times, evening)
    # The next poll is in the morning, shortly after the source wakes up.
    assert datetime(2026, 11, 17, 7, tzinfo=UTC) < wake <= datetime(2026, 11, 17, 8, tzinfo=UTC)


def test_an_interval_never_runs_past_the_end_of_a_busy_stretch() -> None:
    times = _daytime(14)
    late = datetime(2026, 11, 16, 18, 50, tzinfo=UTC)
    assert late + _auto(times, late) <= datetime(2026, 11, 16, 19, 0, 1, tzinfo=UTC)


def test_busy_hours_are_polled_more_often_than_quiet_ones() -> None:
    busy = _daytime(14, per_day=6)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    # plus a rush at 08:00 every day
    busy += [
        start + timedelta(days=d, hours=8, minutes=m) for d in range(14) for m in range(0, 60, 5)
    ]
    at_rush = _auto(busy, datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    at_noon = _auto(busy, datetime(2026, 11, 16, 14, 0, tzinfo=UTC))
    assert at_rush < at_noon


def test_the_interval_stays_within_the_configured_bounds() -> None:
    times = _daytime(14, per_day=300)
    now = datetime(2026, 11, 16, 12, tzinfo=UTC)
    ceiling = timedelta(hours=2)
    assert _auto(times, now) >= FLOOR
    night = datetime(2026, 11, 16, 20, tzinfo=UTC)
    assert (
        auto_interval(times, night, base=BASE, min_interval=FLOOR, max_interval=ceiling).interval
        == ceiling
    )


def test_hourly_rates_average_over_the_days_observed() -> None:
    times = _daytime(7, per_day=12)
    rates, seen = hourly_rates(times, datetime(2026, 11, 9, tzinfo=UTC))
    assert seen == 84
    assert rates[3] == 0
    assert rates[10] == pytest.approx(1.0, rel=0.2)


def test_auto_jitter_is_at_most_three_minutes() -> None:
    assert auto_jitter(timedelta(minutes=10)) == pytest.approx(0.1)
    assert timedelta(hours=12) * auto_jitter(timedelta(hours=12)) == timedelta(minutes=3)


def test_a_simulated_week_needs_at_most_40_percent_of_the_polls_and_finds_items_no_later() -> None:
    """30 entries a day between 07:00 and 19:00 (most in the rush hours), none at night.

    The real policy (``auto_interval`` inside ``next_due``, jitter included) on a
    fake clock, over four weeks of history and one measured week, for four
    seeds taken together: the polls of ``interval: auto`` against those of a
    fixed 30-minute interval, and the average delay from an entry's
    publication to the poll that finds it.
    """
    sim = _simulation()
    fixed_polls = auto_polls = 0
    fixed_delay = auto_delay = 0.0
    for seed in range(4):
        times = sim.entries("rush-hours", sim.HISTORY_DAYS + 7, seed)
        fixed = sim.simulate(times, sim.fixed)
        auto = sim.simulate(times, sim.auto, auto_jittered=True)
        assert fixed.found == auto.found == 7 * 30
        fixed_polls += fixed.polls
        auto_polls += auto.polls
        fixed_delay += fixed.mean_delay.total_seconds()
        auto_delay += auto.mean_delay.total_seconds()
    delays = f"{auto_delay / 240:.1f} vs {fixed_delay / 240:.1f} min"
    summary = f"polls {auto_polls}/{fixed_polls}, delay {delays}"
    assert auto_polls <= 0.40 * fixed_polls, summary
    assert auto_delay <= fixed_delay, summary
