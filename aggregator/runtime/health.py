"""Health: what each update did (its log line, counters), failing sources, tick liveness."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aggregator.errors import without_urls
from aggregator.model import Outcome, SourceResult, SourceState
from aggregator.runtime.metrics import Metrics

__all__ = ["Health"]

log = logging.getLogger(__name__)

#: consecutive failures after which a source counts as ``degraded`` in ``/healthz``
DEGRADED_AFTER = 3


class Health:
    """Records update results and ticks; answers ``/healthz`` and keeps the gauges current.

    Args:
        metrics: the daemon's counters and gauges.
        tick_interval: seconds between dispatch ticks (ticks are stalled after ten missed).
    """

    def __init__(self, metrics: Metrics, tick_interval: float) -> None:
        self.metrics = metrics
        self._stall_after = max(10 * tick_interval, 30.0)
        #: source name -> (last error, consecutive failures)
        self._failing: dict[str, tuple[str, int]] = {}
        self._last_tick: float | None = None
        self._started = time.time()
        self.ticks = 0

    def load(self, states: Iterable[SourceState], sources: int) -> None:
        """Start from the failures the store remembers from earlier runs."""
        for st in states:
            # a source at rest is not polled: it is disabled, not failing
            if st.consecutive_failures and st.disabled_at is None:
                self._failing[st.name] = (st.last_error or "", st.consecutive_failures)
        self.metrics.sources.set(sources)
        self.metrics.failing.set(len(self._failing))

    def configured(self, names: Iterable[str]) -> None:
        """The polled sources changed: forget the failures of removed and disabled ones."""
        keep = set(names)
        for name in list(self._failing):
            if name not in keep:
                del self._failing[name]
        self.metrics.sources.set(len(keep))
        self.metrics.failing.set(len(self._failing))

    def ticked(self, waiting: int) -> None:
        """A dispatch tick ran; ``waiting`` due sources found no free worker."""
        self.ticks += 1
        self._last_tick = time.time()
        self.metrics.last_tick.set(self._last_tick)
        self.metrics.queue_depth.set(waiting)

    def record(self, result: SourceResult) -> None:
        """Log one update's line (and its problems), count it, track its failures."""
        failed = result.outcome in (Outcome.ERROR, Outcome.GONE)
        extra = {
            "source": result.source,
            "outcome": result.outcome.value,
            "duration": round(result.duration, 3),
            "new": result.new,
            "updated": result.updated,
            "removed": result.removed,
        }
        if failed:
            previous = self._failing.get(result.source, ("", 0))[1]
            self._failing[result.source] = (result.error or result.outcome.value, previous + 1)
            log.warning(
                "%s: %s after %.2fs: %s",
                result.source,
                result.outcome.value,
                result.duration,
                result.error,
                extra=extra,
            )
        else:
            self._failing.pop(result.source, None)
            log.info(
                "%s: %s, %d new, %d updated, %d unchanged, %d removed, %d problems in %.2fs",
                result.source,
                result.outcome.value,
                result.new,
                result.updated,
                result.unchanged,
                result.removed,
                len(result.problems),
                result.duration,
                extra=extra,
            )
        if result.put_to_rest is not None:
            # Not polled any more: shown as disabled (``sources``, ``status``), not failing.
            self._failing.pop(result.source, None)
            log.warning("%s: put to rest: %s", result.source, result.put_to_rest, extra=extra)
        for problem in result.problems:
            log.warning("%s", problem, extra={"source": result.source})
        self.metrics.record_update(
            result.outcome.value,
            entries=result.new + result.updated,
            merged=result.merged,
            seconds=result.duration,
            fast_path=result.fast_path,
        )
        self.metrics.failing.set(len(self._failing))

    def body(
        self,
        *,
        in_flight: int,
        documents: int,
        publishing: str | None = None,
        topics_failing: int = 0,
        publish_pending: bool = False,
    ) -> dict[str, Any]:
        """The ``/healthz`` body.

        ``status`` is ``ok`` unless the daemon itself cannot do its job:
        dispatch ticks stalled (a store that cannot be written stops them
        too), publishing failing, or topics that cannot be rendered (counted,
        never named: private topics are secret); then ``unhealthy`` (503),
        with the reasons in ``problems``. Failing sources never make the
        daemon unhealthy: an upstream feed that is gone is not a reason to
        restart it. They are listed in ``failing`` and summed up in
        ``sources`` (``degraded`` once one failed 3 times in a row), and
        counted in ``/metrics`` (``aggregator_sources_failing``).

        Args:
            in_flight: updates running now.
            documents: documents served.
            publishing: why the last publish failed; None when it worked.
            topics_failing: topics whose documents could not be rendered.
            publish_pending: stored changes are not published yet (a publish
                waits for its pace, or runs).
        """
        failing = [
            # /healthz is public: the error's kind, never a source's URL.
            {"source": name, "error": without_urls(error), "consecutive_failures": n}
            for name, (error, n) in sorted(self._failing.items())
        ]
        reference = self._last_tick if self._last_tick is not None else self._started
        stalled = time.time() - reference > self._stall_after
        problems = []
        if stalled:
            problems.append(f"dispatch ticks stalled (none for {self._stall_after:.0f}s)")
        if publishing is not None:
            problems.append(f"publishing fails: {without_urls(publishing)}")
        if topics_failing:
            problems.append(f"{topics_failing} topic(s) cannot be rendered")
        degraded = any(n >= DEGRADED_AFTER for _e, n in self._failing.values())
        return {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "sources": "degraded" if degraded else "ok",
            "failing": failing,
            "last_tick": (
                datetime.fromtimestamp(self._last_tick, UTC).isoformat()
                if self._last_tick
                else None
            ),
            "ticks_stalled": stalled,
            "topics_failing": topics_failing,
            "in_flight": in_flight,
            "documents": documents,
            "publish_pending": publish_pending,
        }
