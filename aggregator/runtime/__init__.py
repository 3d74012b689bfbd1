"""What both modes of ``aggregator run`` share: the embedded daemon and the scale-out publisher.

* :mod:`.republish`: topics made dirty by updates are re-rendered after a
  debounce, swapped into the served set, written to ``data_dir/public`` and
  pinged to the WebSub hub;
* :mod:`.exporter`: runs the republisher's exports one at a time, in a worker
  process of the ingest pool or a thread;
* :mod:`.health`: each update's log line, failing sources, tick liveness,
  ``/healthz`` and the gauges;
* :mod:`.settings`: timings and limits outside the YAML, the ``--data-dir`` override;
* :mod:`.lifecycle`: the shared start and stop (signals, the web server, tasks).

The names below are importable from the package; each loads its module on
first use, so importing ``aggregator.runtime.settings`` alone stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator._lazy import load

if TYPE_CHECKING:
    from aggregator.runtime.health import Health as Health
    from aggregator.runtime.lifecycle import STOP_SIGNALS as STOP_SIGNALS
    from aggregator.runtime.lifecycle import WebServer as WebServer
    from aggregator.runtime.lifecycle import cancel as cancel
    from aggregator.runtime.lifecycle import connection_limit as connection_limit
    from aggregator.runtime.lifecycle import listen as listen
    from aggregator.runtime.lifecycle import on_signals as on_signals
    from aggregator.runtime.lifecycle import remove_signals as remove_signals
    from aggregator.runtime.republish import PublishPace as PublishPace
    from aggregator.runtime.republish import Republisher as Republisher
    from aggregator.runtime.republish import topic_map as topic_map
    from aggregator.runtime.settings import DaemonSettings as DaemonSettings
    from aggregator.runtime.settings import with_data_dir as with_data_dir

#: each name and the module it lives in, loaded on first use
_LAZY = {
    "Health": "aggregator.runtime.health",
    "STOP_SIGNALS": "aggregator.runtime.lifecycle",
    "WebServer": "aggregator.runtime.lifecycle",
    "cancel": "aggregator.runtime.lifecycle",
    "connection_limit": "aggregator.runtime.lifecycle",
    "listen": "aggregator.runtime.lifecycle",
    "on_signals": "aggregator.runtime.lifecycle",
    "remove_signals": "aggregator.runtime.lifecycle",
    "PublishPace": "aggregator.runtime.republish",
    "Republisher": "aggregator.runtime.republish",
    "topic_map": "aggregator.runtime.republish",
    "DaemonSettings": "aggregator.runtime.settings",
    "with_data_dir": "aggregator.runtime.settings",
}


__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    return load(__name__, _LAZY, globals(), name)
