"""The dispatcher: claims due and requested sources in the store and runs each one's update.

Every update starts through :meth:`Dispatcher.tick`, whichever asked for it
(the interval, a seed folder's watcher, the start-up reconciliation, a
reload): the tick claims in the store what it is about to start, and the
update's saved state releases the claim. Selecting and marking are one
transaction, so no snapshot can hand out a source that is running or has just
finished; a source is never in two updates at once, in this process or in
another sharing the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta

from aggregator.model import SourceResult, SourceSpec, SourceState
from aggregator.sources.lanes import Lanes
from aggregator.sources.schedule import catch_up_allowance
from aggregator.update import Context, update_source
from aggregator.update.kinds import updater_for
from aggregator.update.runner import HOST_LANE

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatchUp:
    """How fast the sources overdue at start begin (see :func:`catch_up_allowance`)."""

    #: sources per second to aim for
    rate: float
    #: the longest the catch-up may take
    longest: timedelta


class Dispatcher:
    """Due sources -> updates, at most ``max_workers`` at once; requested ones (re)run soon.

    Updates queue by host as ``update`` does (:class:`~aggregator.sources.lanes.Lanes`):
    an update takes its host's lane first and one of the ``max_workers``
    slots second, so many feeds of one slow host wait in their lane without
    holding the slots that other hosts' updates could use. Up to
    ``max_waiting`` claimed updates may wait so (their claims held); beyond
    that the due sources stay unclaimed in the store until a slot frees.

    Args:
        current: the daemon's current context: each update runs on the one
            current when it starts.
        on_result: called with each finished update's result.
        owner: this process's name on its claims.
        lease: how long a claim holds if its update never saves (the process died).
        max_workers: updates running at once.
        catch_up: the pace of the sources overdue at start.
        max_per_host: the fetch limit per host; a host's lane runs
            ``HOST_LANE`` times as many updates (as ``update``'s lanes do).
        max_waiting: claimed updates that may wait in their host's lane.
    """

    def __init__(
        self,
        current: Callable[[], Context],
        on_result: Callable[[SourceResult], None],
        *,
        owner: str,
        lease: timedelta,
        max_workers: int,
        catch_up: CatchUp,
        max_per_host: int | None = None,
        max_waiting: int = 0,
    ) -> None:
        self._current = current
        self._on_result = on_result
        self.owner = owner
        self._lease = lease
        self._max_workers = max_workers
        self._max_waiting = max_waiting
        per_host = HOST_LANE * max_per_host if max_per_host else max_workers
        self._lanes = Lanes(per_key=per_host, total=max_workers)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        #: asked for now (a seed folder changed, a reconciliation): claimed at the next tick
        self._requested: set[str] = set()
        #: asked for while in flight: requested again when the update ends
        self._rerun: set[str] = set()
        #: the last tick left due sources waiting: a finished update starts the next at once
        self._backlog = False
        # Ticks never overlap: claims are decided in one place, one tick at a time.
        self._lock = asyncio.Lock()
        #: a tick started by a request, not yet running
        self._wake: asyncio.Task[int] | None = None
        self._stopping = False
        #: reloads applying now: no tick starts an update meanwhile
        self._paused = 0
        #: sources a reload waits to see finish: none of theirs starts meanwhile
        self._held: set[str] = set()
        self._pace = catch_up
        #: (monotonic start, sources overdue then, due sources started since)
        self._catch_up: tuple[float, int, int] | None = None
        self._specs: tuple[object, Mapping[str, SourceSpec]] = (None, {})

    @property
    def in_flight(self) -> int:
        """Updates running now."""
        return len(self._in_flight)

    def catch_up(self, overdue: int) -> None:
        """Pace the due sources started from now until ``overdue`` of them have started."""
        self._catch_up = (time.monotonic(), overdue, 0) if overdue else None

    @contextlib.asynccontextmanager
    async def paused(self, finishing: Collection[str] = ()) -> AsyncIterator[None]:
        """No update starts inside: a reload changes the store, then the context.

        A tick between the two would claim a source the store made due (its
        rules changed, say) and start it with the old config's spec: the
        entries the new rules had just removed came back. So would an update
        of the old spec still running: entering first waits for the updates
        in flight of ``finishing`` (the sources the reload changes; each ends
        by its own deadline), starting none of theirs meanwhile, then for a
        tick in progress. Ticks inside start nothing; leaving ticks at once.
        """
        held = set(finishing) - self._held
        self._held |= held
        try:
            running = [task for name, task in self._in_flight.items() if name in held]
            if running:
                await asyncio.wait(running)
            async with self._lock:
                self._paused += 1
            try:
                yield
            finally:
                self._paused -= 1
        finally:
            self._held -= held
            self._wake_up()

    def request(self, name: str) -> None:
        """Update ``name`` when a worker is free, or again right after its update in flight."""
        if self._stopping:
            return
        if name in self._in_flight:
            self._rerun.add(name)
            return
        self._requested.add(name)
        # A tick already waiting for the lock will see it; otherwise start one.
        self._wake_up()

    def _wake_up(self) -> None:
        """Tick soon (once: a tick already waiting for the lock sees every change)."""
        if self._wake is None or self._wake.done():
            self._wake = asyncio.create_task(self._tick_now(), name="dispatch-request")

    async def _tick_now(self) -> int:
        try:
            return await self.tick()
        except Exception:  # the scheduled tick retries within a second
            log.exception("dispatching the requested updates failed")
            return 0

    async def tick(self) -> int:
        """Claim and start requested and due sources, up to the free workers.

        Returns:
            Due sources left waiting for a free worker.
        """
        async with self._lock:
            if self._wake is asyncio.current_task():
                self._wake = None  # later requests need a tick of their own
            if self._stopping or self._paused:
                return 0
            ctx = self._current()
            specs = self._spec_map(ctx)
            requested = sorted(n for n in self._requested if n in specs and n not in self._held)
            self._requested &= self._held  # a held source is asked for again after the hold
            free = self._max_workers + self._max_waiting - len(self._in_flight)
            busy = set(self._in_flight)
            granted, claimed, waiting = await asyncio.to_thread(
                self._claim, ctx, requested, free, self._budget(), busy
            )
            if self._catch_up is not None:
                start, overdue, started = self._catch_up
                started += len(claimed)
                self._catch_up = (start, overdue, started) if started < overdue else None
            self._backlog = waiting > 0
            # Not granted: claimed elsewhere, or no free worker; asked again next tick.
            self._requested.update(n for n in requested if n not in granted)
            release = []
            for name in [*granted, *claimed]:
                spec = specs.get(name)
                if name in self._in_flight:
                    # Its lease ran out while it runs: the running update's save releases it.
                    continue
                if spec is None or self._stopping or name in self._held:
                    release.append(name)
                    continue
                task = asyncio.create_task(self._run(spec, ctx), name=f"update:{name}")
                self._in_flight[name] = task
            if release:
                await asyncio.to_thread(ctx.store.release, release, owner=self.owner)
            log.debug(
                "tick: %d requested, %d due started, %d waiting, %d in flight",
                len(granted),
                len(claimed),
                waiting,
                len(self._in_flight),
            )
            return waiting

    def _budget(self) -> int | None:
        """Due sources this tick may start while catching up; None: no limit."""
        if self._catch_up is None:
            return None
        start, overdue, started = self._catch_up
        elapsed = timedelta(seconds=time.monotonic() - start)
        allowed = catch_up_allowance(
            overdue, elapsed=elapsed, rate=self._pace.rate, longest=self._pace.longest
        )
        return max(allowed - started, 0)

    def _claim(
        self, ctx: Context, requested: list[str], free: int, budget: int | None, busy: set[str]
    ) -> tuple[list[str], list[str], int]:
        store = ctx.store
        now = ctx.clock()
        granted: list[str] = []
        for name in requested:
            if len(granted) >= free:
                break
            if store.claim(name, owner=self.owner, lease=self._lease, now=now):
                granted.append(name)
        room = free - len(granted) if budget is None else min(free - len(granted), budget)
        claimed = (
            store.claim_due(now, owner=self.owner, lease=self._lease, limit=room)
            if room > 0
            else []
        )
        waiting = 0
        if len(claimed) >= room:
            # Saturated: count what is due beyond what runs or was just claimed.
            taken = busy | set(granted) | set(claimed)
            waiting = sum(1 for n in store.due_sources(now) if n not in taken)
        return granted, claimed, waiting

    def _spec_map(self, ctx: Context) -> Mapping[str, SourceSpec]:
        # Config.source() is a linear scan: build the map once per config.
        config, specs = self._specs
        if config is not ctx.config:
            specs = {s.name: s for s in ctx.config.sources}
            self._specs = (ctx.config, specs)
        return specs

    async def _run(self, spec: SourceSpec, ctx: Context) -> None:
        name = spec.name
        try:
            async with self._lanes.slot(updater_for(spec).lane(spec)) as held:
                result = await update_source(spec, ctx, queued=held.release)
        except Exception:
            # update_source reports a source's problems as results: this is the
            # store failing to save. Free the claim so the source is retried.
            log.exception("%s: the update could not be saved", name, extra={"source": name})
            try:
                await asyncio.to_thread(ctx.store.release, [name], owner=self.owner)
            except Exception:
                log.exception("%s: cannot release the claim; it expires with its lease", name)
        else:
            self._on_result(result)
        finally:
            self._in_flight.pop(name, None)
        if name in self._rerun:
            self._rerun.discard(name)
            self.request(name)
        elif self._backlog and not self._stopping:
            # A worker is free and sources are waiting: fill it now, not at the next tick.
            self._wake_up()

    async def drain(self, deadline: float) -> None:
        """Start nothing more; wait up to ``deadline`` seconds for the updates in flight.

        Updates still running then are cancelled and their claims released:
        the next start redoes them.
        """
        self._stopping = True
        async with self._lock:  # a tick under way finishes starting what it claimed
            tasks = dict(self._in_flight)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks.values(), timeout=deadline)
        if not pending:
            return
        log.warning(
            "shutdown deadline of %.0fs passed: abandoning %d updates (redone at next start)",
            deadline,
            len(pending),
        )
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=2)
        abandoned = [name for name, task in tasks.items() if task in pending]
        ctx = self._current()
        try:
            await asyncio.to_thread(ctx.store.release, abandoned, owner=self.owner)
        except Exception:
            log.exception("cannot release the abandoned updates' claims; they expire")


def recover(ctx: Context, owner: str) -> tuple[list[SourceState], int]:
    """Start-up, blocking: release ``owner``'s old claims, read the states, count what is due.

    Returns:
        Every source's state (for the failure counts), and how many remote
        sources are due (never polled, or due while the daemon was down).
    """
    # Our killed predecessor's claims (same owner: one daemon per data
    # folder) would otherwise hold its sources until their leases end.
    ctx.store.release([s.name for s in ctx.config.sources], owner=owner)
    states = ctx.store.states()
    remote = {s.name for s in ctx.config.sources if updater_for(s).remote}
    now = ctx.clock()
    overdue = sum(
        1
        for st in states
        if st.name in remote and not st.gone and (st.next_due_at is None or st.next_due_at <= now)
    )
    return states, overdue
