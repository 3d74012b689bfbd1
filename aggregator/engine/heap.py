"""The C heap of a process: one malloc arena for all its threads, and free pages handed back.

glibc gives a thread that finds the main heap busy an arena of its own (up
to eight per core), and an arena keeps what its thread freed for that
thread's next ``malloc``. The main process of ``update`` and of the daemon
runs a dozen threads that allocate (the event loop, the writer, the pool's
queue feeder and result reader, ``asyncio.to_thread``'s workers): each
arena held its own scattered free chunks, about 6 MiB in all at the peak of
300 feeds' first pass (``docs/performance.md``, twelfth pass). One arena
shares them; the threads are serialised by the GIL almost everywhere, so
they seldom wait for its lock. A process started with ``MALLOC_ARENA_MAX``
in its environment keeps the operator's choice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable
from typing import Any

__all__ = ["malloc_trim", "share_one_arena"]

#: ``mallopt``'s parameter for the most arenas (glibc's ``malloc.h``)
_M_ARENA_MAX = -8


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


@functools.cache  # the writer trims after every batch: set the prototype once
def _function(name: str, *argtypes: type[ctypes._SimpleCData[Any]]) -> Callable[..., int] | None:
    """glibc's function ``name`` returning an int, or None where the C library has none."""
    libc = _libc()
    function: Any = getattr(libc, name, None) if libc is not None else None
    if function is None:
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def share_one_arena() -> bool:
    """Make every thread of this process allocate from the main heap; True if done.

    Call it before the process starts threads: an arena made already stays.
    Does nothing where the C library is not glibc, or when the environment
    sets ``MALLOC_ARENA_MAX`` (glibc read it at start-up).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = _function("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, 1))


def malloc_trim() -> bool:
    """Hand the C heap's free pages back to the kernel; True if any were (False off glibc)."""
    trim = _function("malloc_trim", ctypes.c_size_t)
    if trim is None:
        return False
    return bool(trim(0))
