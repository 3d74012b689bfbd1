"""The Grafana dashboard in config/ parses and charts only metrics the daemon's /metrics exports."""

from __future__ import annotations

import json
import re

from aggregator.config import load_config
from aggregator.daemon import Daemon
from aggregator.model import Outcome, SourceResult

from .conftest import REPO

DASHBOARD = REPO / "config" / "grafana-dashboard.json"
_METRIC = re.compile(r"\baggregator_[a-z_]+\b")


def _exported() -> set[str]:
    """Sample names of a daemon's ``/metrics`` after one update of each outcome and a publish."""
    daemon = Daemon(load_config(REPO / "config" / "aggregator.yaml"))
    for outcome in Outcome:
        daemon.health.record(SourceResult(source="s", outcome=outcome, new=2, merged=1))
    daemon.health.record(SourceResult(source="s", outcome=Outcome.OK, fast_path="taken"))
    daemon.metrics.publish_seconds.observe(0.2)
    text = daemon.metrics_text().decode()
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line[:1] != "#"}


def test_dashboard_parses_and_uses_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    assert dashboard["uid"] and dashboard["title"] and panels
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    referenced = {name for expr in exprs for name in _METRIC.findall(expr)}
    exported = _exported()
    assert referenced, "the dashboard charts no aggregator metric"
    assert referenced - exported == set()
