"""Prometheus metrics of the daemon; the only module importing prometheus-client.

Each :class:`Metrics` owns its registry, so several daemons in one process
(tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

#: the ``Content-Type`` of :meth:`Metrics.render`'s output
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The daemon's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fetches = Counter(
            "aggregator_fetches", "Source updates by outcome", ["outcome"], registry=r
        )
        self.entries = Counter(
            "aggregator_entries_ingested", "Entries stored new or updated", registry=r
        )
        self.merged = Counter(
            "aggregator_stories_merged",
            "New entries that joined an existing story (same link or same text)",
            registry=r,
        )
        self.publish_seconds = Histogram(
            "aggregator_publish_duration_seconds",
            "Time to render and publish the documents",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.update_seconds = Histogram(
            "aggregator_update_duration_seconds",
            "Time of one source update",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.queue_depth = Gauge(
            "aggregator_due_queue_depth", "Sources due and not yet started", registry=r
        )
        self.in_flight = Gauge("aggregator_updates_in_flight", "Source updates running", registry=r)
        self.last_tick = Gauge(
            "aggregator_last_tick_timestamp_seconds",
            "Unix time of the last dispatch tick",
            registry=r,
        )
        self.sources = Gauge("aggregator_sources", "Configured sources", registry=r)
        self.failing = Gauge(
            "aggregator_sources_failing", "Sources whose last update failed", registry=r
        )
        self.feed_parses = Counter(
            "aggregator_feed_parses",
            "XML feeds parsed, by the reader that took them (fast or feedparser) and, for "
            "feedparser, why the fast path declined",
            ["reader", "declined"],
            registry=r,
        )

    def record_update(
        self,
        outcome: str,
        *,
        entries: int,
        merged: int,
        seconds: float,
        fast_path: str | None = None,
    ) -> None:
        """Count one finished source update (and how its feed was parsed, when it was)."""
        self.fetches.labels(outcome=outcome).inc()
        if fast_path == "taken":
            self.feed_parses.labels(reader="fast", declined="").inc()
        elif fast_path is not None:
            self.feed_parses.labels(reader="feedparser", declined=fast_path).inc()
        if entries:
            self.entries.inc(entries)
        if merged:
            self.merged.inc(merged)
        self.update_seconds.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
