"""What runs in a parse worker process itself: its start-up, and calls by name.

Apart from the pool (:mod:`aggregator.engine.pool`), which brings asyncio
and the process machinery: a worker unpickles these functions, and so
imports this module, not the pool's.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import threading
from typing import Any

__all__ = ["call_named", "init_worker", "preload"]


def _exit_with_owner(owner: int) -> None:
    """Worker initializer: end this worker when the process owning the pool ends, even by SIGKILL.

    A worker holds both ends of its call queue, and the fork server's liveness
    pipe: neither the worker nor the fork server ever sees its owner go, so
    without this a killed daemon leaves them running, orphaned. Once the
    workers exit, the fork server sees its pipe close and exits too.
    """
    try:
        owner_fd = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(0)

    def watch() -> None:
        select.select([owner_fd], [], [])  # readable once the owner has exited
        os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def init_worker(owner: int, niceness: int) -> None:
    """Worker initializer: follow the owner's exit; run ``niceness`` below the owner's priority.

    Ctrl-C in a terminal signals the whole process group: the owner shuts
    down (and stops its workers); a worker must not die of it mid-call and
    print a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the fork server preloaded (the parsers and their libraries) lives
    # as long as the worker: out of the collector's reach, a collection never
    # writes to those pages, so they stay shared with the fork server instead
    # of being copied into every worker.
    gc.freeze()
    _exit_with_owner(owner)
    if niceness:
        os.nice(niceness)


def call_named(target: str, /, *args: Any, **kwargs: Any) -> Any:
    """Import ``"package.module:function"`` and call it.

    What :meth:`CpuPool.run` sends to a worker for a call by name: the
    process owning the pool then never imports the function's module (the
    parsers and their C libraries stay out of a daemon at rest).
    """
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def preload(modules: list[str]) -> int:
    """Import ``modules`` (the CPU stage's) in this worker; return its pid.

    What starting the pool asks of each worker: the spawned worker of a pool
    of one would otherwise import the parsers in its first call, and that
    source's poll would count the seconds.
    """
    for module in modules:
        importlib.import_module(module)
    return os.getpid()
