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
"""
