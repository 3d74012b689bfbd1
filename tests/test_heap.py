"""The C heap: a command's threads share one malloc arena."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from aggregator.engine import heap

pytestmark = pytest.mark.skipif(
    heap._libc() is None or not hasattr(heap._libc(), "malloc_info"),
    reason="needs glibc (malloc_info)",
)

# Starts threads that each allocate from the C heap, then counts glibc's
# arenas (``malloc_info`` writes one <heap nr=...> per arena).
_PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, os, sys, tempfile, threading
    from aggregator.engine import heap
    shared = heap.share_one_arena() if sys.argv[1] == "share" else None
    barrier = threading.Barrier(6)
    def work():
        blocks = [bytearray(100_000) for _ in range(20)]  # malloc, below the mmap threshold
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(shared, open(out.name).read().count("<heap nr="))
    """
)


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
        timeout=120,
    ).stdout.split()
    return out[0], int(out[1])


def test_threads_share_one_arena() -> None:
    assert _arenas("share") == ("True", 1)


def test_without_it_each_thread_gets_an_arena() -> None:
    # The probe's own control: glibc gives the six threads arenas of their own.
    shared, arenas = _arenas("default")
    assert shared == "None"
    assert arenas > 1


def test_the_operators_setting_wins() -> None:
    assert _arenas("share", MALLOC_ARENA_MAX="3") == ("False", 3)


def test_the_command_shares_one_arena_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import aggregator.cli
    from aggregator import launch

    calls: list[str] = []
    monkeypatch.setattr(heap, "share_one_arena", lambda: calls.append("arena") or True)
    monkeypatch.setattr(aggregator.cli, "main", lambda: calls.append("command"))
    monkeypatch.setattr("atexit.register", lambda fn: fn)
    launch.main()
    assert calls == ["arena", "command"]
