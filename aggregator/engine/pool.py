"""The CPU stage: parse and normalise in worker processes, never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, TypeVar

from aggregator.engine.child import call_named, init_worker, preload
from aggregator.errors import ParseError
from aggregator.sources.lanes import waits as lane_waits

__all__ = ["CpuPool", "call_named", "default_workers"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: a worker process is replaced after this many tasks, so a parser's slow
#: memory creep on hostile input cannot grow for the daemon's whole life
TASKS_PER_CHILD = 2000
#: seconds a pool that takes turns (:meth:`CpuPool.take_turns_with`) stays
#: idle beside its partner's workers before it stops
TURN_GRACE = 5.0

# Workers come from a fork server that has imported only the CPU stage's
# modules (a single worker is spawned, a fresh interpreter): no SQLAlchemy,
# web server or event loop in the children, and no fork of a process that
# runs threads.
_PRELOAD = ["aggregator.engine.child", "aggregator.engine.work", "aggregator.engine.articles"]


def default_workers(*, spare: int = 0) -> int:
    """One worker process per core this process may run on, less ``spare``; at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - spare)


class CpuPool:
    """Runs CPU-bound functions in worker processes (or threads), with bounded work in flight.

    The pool starts on first use, so a pass with nothing to parse (all 304s)
    never pays for starting processes. At most ``capacity`` calls are queued
    or running; further callers wait, which is what slows fetching down when
    parsing falls behind.

    Args:
        workers: processes; ``None`` for one per core; ``0`` runs the
            functions in threads of this process (for small setups and tests:
            parse work then shares the GIL with the event loop).
        capacity: calls queued or running at once; default twice the workers.
        niceness: how much lower than this process's the workers' CPU
            priority is. A process that answers HTTP (the daemon) lowers
            them, so its event loop gets the CPU first when both want it; a
            one-shot ingest does not: there, the writer keeping up with the
            workers only makes its batches smaller.
        idle_after: seconds without a call after which the workers (and the
            fork server) stop, so a daemon at rest holds no worker process;
            the next call starts them again. ``None``: keep them until
            :meth:`close`.
        on_stop: called after an idle stop (the daemon releases the memory
            its burst of work left, :func:`~aggregator.engine.collector.release_memory`).
        preload: the modules each worker imports as it starts (default: the
            CPU stage's parsers); the daemon's publisher loads the renderer.
        name: what the workers are, in log messages.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        capacity: int | None = None,
        niceness: int = 0,
        idle_after: float | None = None,
        on_stop: Callable[[], None] | None = None,
        preload: Sequence[str] = tuple(_PRELOAD),
        name: str = "parse workers",
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        self.preload = list(preload)
        self.name = name
        self.capacity = capacity or 2 * max(1, self.workers)
        self.niceness = niceness
        self.idle_after = idle_after
        #: called (in a thread) after the workers stopped for being idle
        self.on_stop = on_stop
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        #: calls running in the pool now: event-loop callers, blocking borrowers
        self._busy = 0
        self._held = 0
        #: monotonic time of the last call's end
        self._last_used = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        #: the pool this one takes turns with (None: it keeps to its own idle_after)
        self._partner: CpuPool | None = None

    def take_turns_with(self, other: CpuPool) -> None:
        """Keep this pool's and ``other``'s workers from idling beside each other.

        The daemon's parse workers and its publishing worker each hold their
        imports (60-70 and 50-55 MiB) until they stop for being idle, and a
        burst of polls and the publish after it used to overlap by a whole
        ``idle_after``: the publisher idle beside the parse worker still
        ingesting, the parse worker idle beside the publish that followed.
        Taking turns, a pool that starts stops its partner first if the
        partner is idle (nothing in flight: the daemon's first poll used to
        start the parse workers beside the publisher idle since its start-up
        publish), and a pool idle :data:`TURN_GRACE` seconds while its
        partner's workers were used since stops then, not after its own
        ``idle_after`` (of two idle pools, the one idle longer goes). Both may
        still run at once while both have work; the daemon's publish waits for
        the parse workers to go quiet (``DaemonSettings.publish_hold``).
        """
        self._partner, other._partner = other, self

    @property
    def partner(self) -> CpuPool | None:
        """The pool this one takes turns with (:meth:`take_turns_with`)."""
        return self._partner

    def idle_for(self) -> float:
        """Seconds since the last call ended, while the pool runs and nothing uses it; else 0."""
        with self._lock:
            if self._executor is None or self._busy or self._held:
                return 0.0
            return time.monotonic() - self._last_used

    def quiet_in(self) -> float:
        """Seconds until the workers will have been idle :data:`TURN_GRACE` (0: they are
        stopped, or idle that long already); a pool in use answers the whole grace."""
        return max(0.0, TURN_GRACE - self.idle_for()) if self.running else 0.0

    def _idle_limit(self) -> float | None:
        """Seconds of idleness after which the workers stop now (None: never).

        :data:`TURN_GRACE` while the partner runs and was used since this pool
        was (or is in use): the idler of the two yields, never both at once.
        """
        partner = self._partner
        if partner is not None and partner.running and partner._used_after(self._last_used):
            return TURN_GRACE if self.idle_after is None else min(self.idle_after, TURN_GRACE)
        return self.idle_after

    def _used_after(self, moment: float) -> bool:
        """Whether this pool is in use, or its last call ended after ``moment`` (monotonic)."""
        with self._lock:
            return bool(self._busy or self._held) or self._last_used > moment

    @property
    def processes(self) -> bool:
        """Whether calls run in worker processes."""
        return self.workers > 0

    def _get_executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.workers == 0:
                    self._executor = ThreadPoolExecutor(2, thread_name_prefix="ingest-cpu")
                else:
                    # Several workers fork from a server that imported the
                    # CPU stage, and share its pages. One worker is spawned:
                    # a fork server would only be another process beside it
                    # (300 feeds' first pass: 186 MiB at the peak against
                    # 191-193 with an empty fork server, 199-200 with a full one).
                    ctx = multiprocessing.get_context("forkserver" if self.workers > 1 else "spawn")
                    if self.workers > 1:
                        ctx.set_forkserver_preload(self.preload)
                    with _services.lock:
                        self._executor = ProcessPoolExecutor(
                            self.workers,
                            mp_context=ctx,
                            max_tasks_per_child=TASKS_PER_CHILD,
                            initializer=init_worker,
                            initargs=(os.getpid(), self.niceness),
                        )
                        _services.executors += 1
            return self._executor

    @property
    def running(self) -> bool:
        """Whether the pool has started (worker processes or threads exist)."""
        return self._executor is not None

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[Executor]:
        """The pool's executor, started if need be, for a blocking caller off the event loop.

        Calls submitted here bypass :attr:`capacity`; the caller bounds its own
        work in flight. While borrowed, the pool does not stop for being idle.
        After a :class:`BrokenProcessPool`, hand the executor to
        :meth:`discard` so the next call starts fresh workers.
        """
        with self._lock:
            self._held += 1
        try:
            yield self._get_executor()
        finally:
            with self._lock:
                self._held -= 1
                self._last_used = time.monotonic()

    def discard(self, broken: Executor) -> None:
        """Drop an executor whose worker died; the next call starts a new one."""
        self._restart(broken)

    def start(self) -> None:
        """Start the workers now instead of on the first call (blocks: call it in a thread).

        Starting the fork server imports the CPU stage's modules, seconds that a
        daemon must not spend on its event loop in its first update; the
        spawned worker of a pool of one imports them here, so no source's
        first parse counts them as its own time.
        """
        executor = self._get_executor()
        for future in [executor.submit(preload, self.preload) for _ in range(max(1, self.workers))]:
            future.result()

    def _restart(self, broken: Executor) -> None:
        with self._lock:
            ours = self._executor is broken
            if ours:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)
        if ours and isinstance(broken, ProcessPoolExecutor):
            _services.release(stop=False)

    def _semaphore(self) -> asyncio.Semaphore:
        # Bound to the running loop: a context may serve several asyncio.run() calls.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.capacity)
            self._slots_loop = loop
        return self._slots

    async def run(self, label: str, fn: Callable[..., T] | str, /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker and return its result.

        ``label`` names the source in messages. ``fn`` may be a function, or
        its name as ``"package.module:function"`` (see :func:`call_named`), so
        that this process need not import it.

        A worker that dies (killed, or crashed on hostile input) is replaced
        and the call retried once; a second death is the source's
        :class:`ParseError`, and the other sources go on.

        Raises:
            ParseError: the call killed its worker twice.
            Exception: whatever ``fn`` raised.
        """
        call = (
            partial(call_named, fn, *args, **kwargs)
            if isinstance(fn, str)
            else partial(fn, *args, **kwargs)
        )
        loop = asyncio.get_running_loop()
        waited = lane_waits.get()
        queued = time.perf_counter()
        async with self._semaphore():
            self._busy += 1
            try:
                for attempt in (1, 2):
                    executor = await self._started()
                    if self._partner is not None:  # idle beside us from now on: it stops sooner
                        self._partner._arm_idle(loop)
                    if waited is not None and attempt == 1:
                        # A free worker (started, if the pool was stopped) is
                        # not the caller's own time: see lanes.waits.
                        waited.append(time.perf_counter() - queued)
                    try:
                        return await loop.run_in_executor(executor, call)
                    except BrokenProcessPool:
                        log.warning("%s: a worker died (attempt %d); restarting", label, attempt)
                        self._restart(executor)
            finally:
                self._busy -= 1
                self._last_used = time.monotonic()
                self._arm_idle(loop)
        raise ParseError(label, "the parse worker died twice on this document")

    async def _started(self) -> Executor:
        """The executor; a stopped pool starts in a thread, never on the event loop.

        Starting the fork server imports the CPU stage's modules (seconds);
        done here on the loop, it would hold every request and fetch.
        """
        executor = self._executor
        if executor is not None:
            return executor
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._executor is None:
                partner = self._partner
                if partner is not None and partner.idle_for() > 0:
                    await asyncio.to_thread(partner.stop)
                await asyncio.to_thread(self.start)
            return self._get_executor()

    def _arm_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        limit = self._idle_limit()
        if limit is None or self._busy or self._executor is None:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        # From the last call's end: arming again (each partner call does) never puts it off.
        delay = max(0.0, self._last_used + limit - time.monotonic())
        self._idle_timer = loop.call_later(delay, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_timer = None
        limit = self._idle_limit()
        if self._busy or self._executor is None or limit is None:
            return
        quiet = time.monotonic() - self._last_used
        if quiet < limit:
            self._idle_timer = asyncio.get_running_loop().call_later(limit - quiet, self._on_idle)
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.stop))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def stop(self) -> None:
        """Stop the workers and the fork server while idle (blocks: call it in a thread).

        The next call starts them again. A pool in use (a call in
        :meth:`run`, or :meth:`borrowed`) is left running.
        """
        with self._lock:
            if self._held or self._busy:
                return
            executor, self._executor = self._executor, None
        if executor is None:
            return
        quiet = time.monotonic() - self._last_used
        executor.shutdown(wait=True, cancel_futures=False)
        processes = isinstance(executor, ProcessPoolExecutor)
        # Unreferenced before the tracker stops: its semaphores go first (see
        # _stop_resource_tracker).
        del executor
        if processes:
            _services.release(stop=True)
        log.info("%s stopped after %.0fs idle", self.name, quiet)
        if self.on_stop is not None:
            self.on_stop()

    def close(self) -> None:
        """Stop the workers; calls in flight finish first."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
            if isinstance(executor, ProcessPoolExecutor):
                _services.release(stop=False)


class _Services:
    """multiprocessing's fork server and resource tracker, which every process pool shares.

    The daemon runs two pools (parsing, publishing) that stop idle each on
    its own: the services stop with the last executor, never under another
    pool's live workers (the tracker would unlink their semaphores as it goes).
    """

    def __init__(self) -> None:
        #: held while an executor is made, and while the services stop
        self.lock = threading.Lock()
        #: process executors made and not yet shut down
        self.executors = 0

    def release(self, *, stop: bool) -> None:
        """Count a process executor shut down; with ``stop``, stop the services after the last."""
        with self.lock:
            self.executors -= 1
            if stop and self.executors == 0:
                _stop_fork_server()
                _stop_resource_tracker()


_services = _Services()


def _stop_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker once no pool needs it (about 8 MiB).

    The executor's semaphores are collected first, so the tracker has
    nothing registered to clean up when it goes; the next pool starts a new
    one. Left running where CPython has no ``ResourceTracker._stop``.
    """
    tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
    stop = getattr(tracker, "_stop", None)
    if stop is None:
        return
    gc.collect()
    try:
        stop()
    except OSError as exc:  # already gone
        log.debug("resource tracker: %s", exc)


def _stop_fork_server() -> None:
    """Stop multiprocessing's fork server, which outlives the pools it served.

    It holds the CPU stage's imports (about 30 MiB) for the life of the
    process; the next pool starts a new one. ``ForkServer._stop`` is what
    CPython's own tests call; where it is missing the server is left running.
    """
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is None:
        return
    try:
        stop()
    except OSError as exc:  # already gone
        log.debug("fork server: %s", exc)
