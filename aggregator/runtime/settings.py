"""How the daemon runs (timings and limits outside the YAML), and the ``--data-dir`` override."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aggregator.config import Config

__all__ = ["DaemonSettings", "with_data_dir"]


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """How the daemon runs (not part of the YAML config)."""

    #: seconds between dispatch ticks
    tick_interval: float = 1.0
    #: source updates running at once
    max_workers: int = 32
    #: quiet time after the last change before republishing
    publish_debounce: float = 0.5
    #: longest a republish waits while changes keep coming
    publish_max_delay: float = 5.0
    #: after a republish that took d seconds, the next waits at least this times d, so
    #: re-rendering big topics takes at most a fifth of the time while ingest runs
    publish_spacing: float = 4.0
    #: longest a republish waits for the parse workers to have been idle a few seconds
    #: (``engine.pool.TURN_GRACE``) when it runs in a process of its own, so that a
    #: burst of polls and its publish take turns instead of holding both processes
    publish_hold: float = 300.0
    #: seconds SIGTERM waits for updates in flight
    shutdown_deadline: float = 10.0
    #: how often the retention job runs
    retention_every: timedelta = timedelta(days=1)
    #: watch seed folders and the config file
    watch: bool = True
    #: how long a claim on a source lasts if its update never saves (the process died)
    lease: timedelta = timedelta(hours=1)
    #: seconds a thread keeps the GIL while another waits for it (``sys.setswitchinterval``;
    #: Python's default is 0.005): the event loop waits at most this long per switch
    #: behind the store writer and the publishing thread
    switch_interval: float = 0.001
    #: the parse workers run this much below the daemon's CPU priority (``nice``), so
    #: the event loop and the store writer get the CPU first when both want it
    worker_niceness: int = 10
    #: sources overdue at start begin at most this many per second ...
    catch_up_rate: float = 50.0
    #: ... spread over no longer than this
    catch_up_longest: timedelta = timedelta(minutes=5)


def with_data_dir(config: Config, data_dir: Path | None) -> Config:
    """``config`` with another data folder (``--data-dir``); a SQLite store moves with it."""
    if data_dir is None:
        return config
    data_dir = data_dir.resolve()
    store_url = config.store_url
    if store_url == f"sqlite:///{config.data_dir / 'aggregator.db'}":
        store_url = f"sqlite:///{data_dir / 'aggregator.db'}"
    return dataclasses.replace(config, data_dir=data_dir, store_url=store_url)
