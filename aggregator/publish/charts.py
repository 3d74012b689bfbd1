"""Bar charts as geometry for inline SVG: the status page's pictures, computed here (pure).

The template draws each :class:`Bar` as a ``<rect>`` with its ``<title>``
(a tooltip, and text for screen readers); no script is needed to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.model import Outcome, Poll
from aggregator.status.snapshot import HourCount

__all__ = ["Bar", "Chart", "entry_bars", "hour_bars", "poll_bars", "publish_bars"]

# The chart's own inner margins would only shrink the bars: a bar touches the edges.
_GAP = 1.0
_MIN_HEIGHT = 1.5


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of a chart."""

    x: float
    y: float
    width: float
    height: float
    #: the CSS class: ``ok``, ``nm`` (not modified), ``fail`` or ``value``
    kind: str
    #: the tooltip
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: its size, its bars, and one line saying what it shows."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    #: the accessible name (``aria-label``)
    label: str


def _kind(outcome: Outcome) -> str:
    if outcome is Outcome.OK:
        return "ok"
    if outcome is Outcome.NOT_MODIFIED:
        return "nm"
    return "fail"


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _column(
    index: int, count: int, width: int, height: int, top: float, value: float, peak: float
) -> tuple[float, float, float, float]:
    """x, y, width, height of bar ``index`` of ``count`` standing on ``top`` (stacking)."""
    slot = width / max(count, 1)
    h = max(value / peak * height, _MIN_HEIGHT) if value > 0 else 0.0
    return (
        round(index * slot, 1),
        round(height - top - h, 1),
        round(max(slot - _GAP, 1.0), 1),
        round(h, 1),
    )


def poll_bars(
    history: Sequence[Poll], *, width: int = 160, height: int = 28, last: int = 48
) -> Chart:
    """A source's last ``last`` polls: height is the poll's duration, colour its outcome.

    A failed poll is drawn full height, so a failure never hides as a short bar.
    """
    polls = list(history)[-last:]
    peak = max((p.seconds for p in polls), default=0.0) or 1.0
    bars = []
    for i, poll in enumerate(polls):
        kind = _kind(poll.outcome)
        value = peak if kind == "fail" else max(poll.seconds, peak / 20)
        x, y, w, h = _column(i, last, width, height, 0.0, value, peak)
        status = f" HTTP {poll.status}" if poll.status else ""
        bars.append(
            Bar(
                x,
                y,
                w,
                h,
                kind,
                f"{_stamp(poll.at)}: {poll.outcome.value}{status}, {poll.seconds:.2f} s, "
                f"{poll.new} new, {poll.updated} updated",
            )
        )
    failed = sum(1 for p in polls if _kind(p.outcome) == "fail")
    label = f"last {len(polls)} polls, {failed} failed, longest {peak:.2f} s"
    return Chart(width, height, tuple(bars), label)


def hour_bars(hours: Sequence[HourCount], *, width: int = 480, height: int = 96) -> Chart:
    """Polls per hour, stacked by outcome (ok, not modified, failed)."""
    peak = max((h.ok + h.not_modified + h.failed for h in hours), default=0) or 1
    bars = []
    for i, hour in enumerate(hours):
        top = 0.0
        for kind, value in (("ok", hour.ok), ("nm", hour.not_modified), ("fail", hour.failed)):
            if not value:
                continue
            x, y, w, h = _column(i, len(hours), width, height, top, value, peak)
            top += h
            bars.append(Bar(x, y, w, h, kind, f"{_stamp(hour.hour)}: {value} {_NAMES[kind]}"))
    total = sum(h.ok + h.not_modified + h.failed for h in hours)
    return Chart(width, height, tuple(bars), f"{total} polls in {len(hours)} hours")


_NAMES = {"ok": "ok", "nm": "not modified", "fail": "failed"}


def entry_bars(hours: Sequence[HourCount], *, width: int = 480, height: int = 64) -> Chart:
    """New and updated entries per hour."""
    return _values(
        [(h.hour, float(h.entries)) for h in hours],
        width,
        height,
        unit="entries",
        label=f"{sum(h.entries for h in hours)} entries in {len(hours)} hours",
    )


def publish_bars(
    publishes: Sequence[tuple[datetime, float]], *, width: int = 480, height: int = 64
) -> Chart:
    """Each recent publish's duration, oldest first."""
    longest = max((s for _, s in publishes), default=0.0)
    label = f"{len(publishes)} publishes, longest {longest:.2f} s"
    return _values(list(publishes), width, height, unit="s", label=label)


def _values(
    points: Sequence[tuple[datetime, float]], width: int, height: int, *, unit: str, label: str
) -> Chart:
    peak = max((v for _, v in points), default=0.0) or 1.0
    bars = []
    for i, (at, value) in enumerate(points):
        x, y, w, h = _column(i, len(points), width, height, 0.0, value, peak)
        if h:
            shown = f"{value:.2f}" if unit == "s" else f"{value:g}"
            bars.append(Bar(x, y, w, h, "value", f"{_stamp(at)}: {shown} {unit}"))
    return Chart(width, height, tuple(bars), label)
