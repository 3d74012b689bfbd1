"""The store's one writer: queued writes applied in order, in batched transactions."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Writer"]

log = logging.getLogger(__name__)

W = TypeVar("W")
R = TypeVar("R")


@dataclass(slots=True)
class _Job(Generic[W, R]):
    write: W
    future: Future[R]


_STOP = object()


class Writer(Generic[W, R]):
    """Applies writes from any thread or task through one thread, many per transaction.

    Writers in several threads wait on each other's write lock (SQLite) and
    pay a commit each; one writer that takes whatever has queued up while the
    last batch committed pays one commit per batch and never waits on a lock.

    Writes are applied in the order they were submitted. A batch that fails
    is applied again one write at a time, so one bad write fails only its
    own submitter.

    Args:
        apply: applies a batch in one transaction; returns one result per write.
        weigh: the size of a write (e.g. its entries), to cap a batch.
        max_batch: the most weight applied in one transaction.
        capacity: writes queued at once; a submitter waits for room, which is
            what slows the stages before it when the disk is slow.
        after_batch: called in the writer's thread after each batch.
    """

    def __init__(
        self,
        apply: Callable[[Sequence[W]], Sequence[R]],
        *,
        weigh: Callable[[W], int] = lambda _w: 1,
        max_batch: int = 5000,
        capacity: int = 64,
        name: str = "store-writer",
        after_batch: Callable[[], object] | None = None,
    ) -> None:
        self._apply = apply
        self._after_batch = after_batch
        self._weigh = weigh
        self.max_batch = max_batch
        self.capacity = capacity
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._name = name
        self._closed = False
        #: transactions committed, for tests and metrics
        self.batches = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    async def submit(self, write: W, *, queued: Callable[[], object] | None = None) -> R:
        """Queue a write and wait until it is committed; returns its result.

        ``queued`` is called once the write is in the queue (a source's update
        gives its host's lane back then).

        Raises:
            Exception: what applying this write raised.
        """
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.capacity)
            self._slots_loop = loop
        async with self._slots:
            future: Future[R] = Future()
            self._queue.put(_Job(write, future))
            if queued is not None:
                queued()
            return await asyncio.wrap_future(future)

    def queued(self) -> int:
        """Writes waiting for the writer (not counting the batch being applied)."""
        return self._queue.qsize()

    def _take_batch(self, first: _Job[W, R]) -> tuple[list[_Job[W, R]], bool]:
        batch = [first]
        weight = self._weigh(first.write)
        while weight < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            assert isinstance(job, _Job)
            batch.append(job)
            weight += self._weigh(job.write)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Job)
            batch, stop = self._take_batch(first)
            self._commit(batch)
            if self._after_batch is not None:
                del batch, first  # what only the batch held is freed first
                try:
                    self._after_batch()
                except Exception:  # never the writer's end: every submitter would wait
                    log.exception("after a batch")

    def _commit(self, batch: list[_Job[W, R]]) -> None:
        try:
            results = self._apply([job.write for job in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            log.warning("a batch of %d writes failed; applying them one at a time", len(batch))
            for job in batch:
                self._commit([job])
            return
        self.batches += 1
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def close(self) -> None:
        """Apply everything queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
