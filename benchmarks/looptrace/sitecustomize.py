"""Event-loop trace for ``bench_ingest.py --loop-trace FILE``: every slow callback, and why.

On ``PYTHONPATH`` only for that benchmark's daemon: when ``AGGREGATOR_BENCH_LOOP_TRACE``
names a file, every event-loop callback that holds the loop over 15 ms is written
there with its wall time, its own thread's CPU time (wall well above CPU: the
loop waited for the GIL) and the task it stepped; during the first 30 s of the
process each such callback is profiled too, and the profile's top lines follow it.
"""

from __future__ import annotations

import os

_TRACE = os.environ.get("AGGREGATOR_BENCH_LOOP_TRACE")

if _TRACE:
    import asyncio.events
    import cProfile
    import io
    import pstats
    import time
    from typing import Any

    _run = asyncio.events.Handle._run
    _started = time.monotonic()
    _out = open(_TRACE, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life

    def _what(handle: Any) -> str:
        owner = getattr(handle._callback, "__self__", None)
        task = owner if hasattr(owner, "get_coro") else getattr(owner, "_task", None)
        if task is not None:
            coro = task.get_coro()
            return f"task {task.get_name()} {getattr(coro, '__qualname__', coro)}"
        return repr(handle)[:200]

    def _traced(self: Any) -> None:
        profile = cProfile.Profile() if time.monotonic() - _started < 30 else None
        wall, cpu = time.perf_counter(), time.thread_time()
        if profile is not None:
            profile.enable()
        try:
            _run(self)
        finally:
            if profile is not None:
                profile.disable()
            took = time.perf_counter() - wall
            if took > 0.015:
                cpu = time.thread_time() - cpu
                at = time.monotonic() - _started
                _out.write(
                    f"{at:8.3f} s: {took * 1000:6.1f} ms wall, {cpu * 1000:6.1f} ms CPU, "
                    f"{_what(self)}\n"
                )
                if profile is not None:
                    text = io.StringIO()
                    stats = pstats.Stats(profile, stream=text)
                    stats.sort_stats("cumulative").print_stats(16)
                    _out.write(text.getvalue())
                _out.flush()

    asyncio.events.Handle._run = _traced  # type: ignore[method-assign]
