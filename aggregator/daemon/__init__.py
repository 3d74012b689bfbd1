"""``aggregator run``: the embedded daemon, a small composition root over named parts.

One process, one asyncio loop holding:

* :mod:`.dispatch`: an APScheduler 3 tick every second claims due sources in
  the store and runs each update as an asyncio task, at most ``max_workers``
  at a time; seed-folder changes, the start-up reconciliation and reloads ask
  for updates through the same claim;
* :mod:`aggregator.runtime.republish`: topics made dirty by updates are re-rendered after a
  debounce, swapped into the served set, written to ``data_dir/public`` and
  pinged to the WebSub hub;
* :mod:`aggregator.runtime.health`: each update's log line, failing sources, tick liveness,
  ``/healthz`` and the gauges;
* :mod:`.reload`: what a new config changes, planned by a pure function;
* :mod:`.watch`: watchers (watchfiles) on the seed folders and the config file;
* :mod:`.core`: the wiring, the lifecycle, signals, retention (in
  :mod:`aggregator.update.retention`) and the web server (:mod:`aggregator.web`).

Durability comes from the store: every update commits its entries and its
state in transactions, so a crash (even ``kill -9``) loses at most the work in
flight. On start every seed folder is reconciled at once (a stat pass reads
only what changed while the daemon was down) and overdue remote sources are
spread over the next minutes. ``SIGTERM``/``SIGINT`` stop the ticks, let
updates in flight finish within a deadline, publish once more and exit 0.
``SIGHUP`` (or an edit of the config file) reloads the config; an invalid one
is logged and the daemon keeps running on the old one.
"""

from __future__ import annotations

from aggregator.runtime.settings import DaemonSettings, with_data_dir

from .core import Daemon
from .entry import run_daemon, serve_documents
from .lock import DataDirLock
from .logs import JsonFormatter, configure_logging
from .reload import ReloadPlan, plan_reload

__all__ = [
    "Daemon",
    "DaemonSettings",
    "DataDirLock",
    "JsonFormatter",
    "ReloadPlan",
    "configure_logging",
    "plan_reload",
    "run_daemon",
    "serve_documents",
    "with_data_dir",
]
