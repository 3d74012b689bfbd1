"""Parse stage stubbed for ``bench_workers.py --prepared``: feeds parsed before the run.

On ``PYTHONPATH`` only for that benchmark's processes (each worker, its fork
server and parse processes): when ``AGGREGATOR_BENCH_PREPARED`` names a pickle
of ``{sha256 of a body: its FeedDigest}``, ``aggregator.engine.work.digest_feed``
returns the prepared digest of a body it knows (and parses any other), so the
workers' throughput is measured apart from the CPU the parse stage costs.
"""

from __future__ import annotations

import os

_PREPARED = os.environ.get("AGGREGATOR_BENCH_PREPARED")

if _PREPARED:
    import functools
    import hashlib
    import pickle
    from typing import Any

    import aggregator.engine.work as _work

    @functools.cache
    def _digests() -> dict[str, Any]:
        with open(_PREPARED, "rb") as f:
            loaded: dict[str, Any] = pickle.load(f)
        return loaded

    _parse = _work.digest_feed

    def _prepared(body: bytes, **kwargs: Any) -> Any:
        found = _digests().get(hashlib.sha256(body).hexdigest())
        return found if found is not None else _parse(body, **kwargs)

    _work.digest_feed = _prepared
