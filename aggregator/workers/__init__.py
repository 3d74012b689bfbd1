"""Scale-out on PostgreSQL: worker processes poll through a job queue, one publisher serves.

::

    aggregator worker (xN) ──► procrastinate jobs in the store's database ──► aggregator run
      dispatch: claim due sources, queue one fetch each        publish queue: re-render the
      fetch: pipeline.update_source, queue dirty topics        topics, serve, write the tree

* :mod:`.queue`: the one module importing procrastinate (jobs, locks, schema);
* :mod:`.worker`: ``aggregator worker``: dispatch, fetch, recovery, cleanup, retention;
* :mod:`.publisher`: ``aggregator run`` when ``workers.enabled``: serve and publish only.
"""

from __future__ import annotations

from .publisher import run_publisher
from .worker import run_worker

__all__ = ["run_publisher", "run_worker"]
