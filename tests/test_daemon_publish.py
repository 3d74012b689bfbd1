"""The daemon under a big ingest: coalesced, paced publishes off the loop; workers kept busy."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import aggregator.daemon.dispatch as dispatch
import aggregator.publish.export as export
import aggregator.publish.incremental as incremental
from aggregator.config import load_config
from aggregator.daemon import Daemon, DaemonSettings
from aggregator.engine import CpuPool
from aggregator.model import Outcome, SourceResult, SourceSpec
from aggregator.runtime.metrics import Metrics
from aggregator.runtime.republish import PublishPace, Republisher, publish_at
from aggregator.update import Context, open_context
from aggregator.web import DocumentStore, create_app, serve

from .conftest import run_cli
from .daemonkit import free_port, running, wait_for

PACE = PublishPace(debounce=0.5, max_delay=5.0, spacing=4.0)
TOPICS = ("talks", "war", "climate")


class FakeClock:
    """Monotonic seconds that move only when the test (or a fake render) says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    cfg = tmp_path / "aggregator.yaml"
    topics = "".join(f"  - {{name: {t}, query: {t}}}\n" for t in TOPICS)
    # Threads: the publish runs in this process, where the test can watch it.
    cfg.write_text(f"data_dir: var\ningest: {{workers: 0}}\ntopics:\n{topics}", encoding="utf-8")
    context = open_context(load_config(cfg))
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Topic name -> times rendered."""
    counts: Counter[str] = Counter()
    real = incremental._publish_topic

    def counting(export: Any, site: Any, topic: Any, *args: Any) -> Any:
        counts[topic.name] += 1
        return real(export, site, topic, *args)

    monkeypatch.setattr(incremental, "_publish_topic", counting)
    return counts


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``condition`` holds; fail after a generous bound."""
    async with asyncio.timeout(120):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


# -- when a publish may start (pure) ----------------------------------------------------


def test_a_burst_publishes_a_debounce_after_its_last_change() -> None:
    assert publish_at(PACE, first_change=0.0, last_change=2.0, last_end=None, last_took=0) == 2.5


def test_changes_that_never_stop_publish_after_the_longest_delay() -> None:
    assert publish_at(PACE, first_change=0.0, last_change=4.9, last_end=None, last_took=0) == 5.0


def test_a_slow_publish_spaces_the_next_by_its_duration() -> None:
    # The last publish took 30 s and ended at t=100; changes keep coming (the
    # latest at t=218): the next waits until 100 + 4 x 30.
    due = publish_at(PACE, first_change=101.0, last_change=218.0, last_end=100.0, last_took=30.0)
    assert due == 220.0
    # While they come, each holds the next publish back for as long as the last
    # one took (the ingest is over after a lull that long), up to the 120 s.
    for last in (101.0, 150.0, 200.0):
        now_due = publish_at(
            PACE, first_change=101.0, last_change=last, last_end=100.0, last_took=30.0
        )
        assert now_due == min(220.0, last + 30.0)
    # One change, then quiet (a seed article dropped in 3 s after a 2 s
    # publish): it waits the longest delay without another, not 4 x 2 s.
    due = publish_at(PACE, first_change=103.0, last_change=103.0, last_end=100.0, last_took=2.0)
    assert due == 103.0 + PACE.max_delay
    assert PACE.max_delay < PACE.spacing * 2.0
    # Changes that all came while that publish ran, none since: the end of a
    # burst, published once the longest delay has passed without a new change.
    due = publish_at(PACE, first_change=80.0, last_change=95.0, last_end=100.0, last_took=30.0)
    assert due == 100.0 + PACE.max_delay
    # A quick one does not hold back the debounce.
    due = publish_at(PACE, first_change=101.0, last_change=101.0, last_end=100.0, last_took=0.01)
    assert due == 101.5


# -- the republisher --------------------------------------------------------------------


def test_many_marks_within_the_window_render_each_topic_once(
    ctx: Context, renders: Counter[str]
) -> None:
    clock = FakeClock()
    rep = Republisher(DocumentStore(), lambda: ctx, Metrics(), pace=PACE, clock=clock)

    async def main() -> None:
        runner = asyncio.create_task(rep.run())
        try:
            assert not rep.pending
            # 60 updates, 10 ms apart on the republisher's clock, each dirtying a topic.
            for i in range(60):
                rep.mark_dirty([TOPICS[i % len(TOPICS)]])
                clock.now += 0.01
                await asyncio.sleep(0)
            await asyncio.sleep(0.05)  # let the runner look at the pending burst
            assert rep.publishes == 0, "published inside the debounce window"
            assert rep.pending, "changes wait for the pace: /healthz says publish_pending"
            assert rep.due() == pytest.approx(1000.0 + 0.59 + PACE.debounce)
            clock.now += PACE.debounce
            await _until(lambda: rep.publishes == 1, "the burst was never published")
            assert not rep.pending
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner

    asyncio.run(main())
    assert renders == Counter(dict.fromkeys(TOPICS, 1))
    assert set(rep.documents.documents) >= {f"topics/{t}.atom" for t in TOPICS}


class ParseWorkers:
    """A parse pool's answer to "when will you have been idle the grace?"."""

    def __init__(self) -> None:
        self.quiet = 0.0

    def quiet_in(self) -> float:
        return self.quiet


def test_a_publish_beside_the_parse_workers_waits_for_them_to_go_quiet() -> None:
    """A publishing process holds its publish while the parse workers work, up to ``hold``."""
    clock = FakeClock()
    parse = ParseWorkers()
    stages = SimpleNamespace(pool=parse, publisher=object())
    ctx: Any = SimpleNamespace(stages=stages)
    pace = dataclasses.replace(PACE, hold=60.0)
    updating = [True]
    rep = Republisher(
        DocumentStore(),
        lambda: ctx,
        Metrics(),
        pace=pace,
        ingesting=lambda: updating[0],
        clock=clock,
    )
    rep.mark_dirty(["talks"])
    first = clock.now
    assert rep.due() == first + PACE.debounce  # the workers are stopped or quiet
    parse.quiet = 3.0  # a parse call 2 s ago
    assert rep.due() == first + 3.0
    clock.now += 40.0
    parse.quiet = 5.0  # still polling, 40 s into the burst
    assert rep.due() == clock.now + 5.0
    clock.now += 19.0
    assert rep.due() == first + 60.0  # the burst outlasts the hold: publish anyway
    updating[0] = False  # no update in flight: the burst is over, whatever the workers did
    assert rep.due() == first + PACE.debounce
    updating[0] = True
    # Publishing in this process (or in the parse workers): nothing to take turns with.
    stages.publisher = None
    assert rep.due() == first + PACE.debounce
    # The daemon's default holds.
    assert PublishPace.of(DaemonSettings()).hold > 0


def test_after_a_slow_publish_the_next_waits_in_proportion(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    real = incremental._publish_topic

    def slow(*args: Any) -> Any:
        clock.now += 10.0  # each topic takes 10 s on the republisher's clock
        return real(*args)

    monkeypatch.setattr(incremental, "_publish_topic", slow)
    rep = Republisher(DocumentStore(), lambda: ctx, Metrics(), pace=PACE, clock=clock)

    async def main() -> None:
        rep.mark_dirty(["talks"])
        await rep.publish()
        ended = clock.now
        rep.mark_dirty(["war"])
        # Took 30 s (all three topics render on the first publish): while changes
        # keep coming, the next waits 120 s; each change holds it for the longest
        # delay at most, and the last ones for the rest of the 120 s.
        spaced = ended + PACE.spacing * 30.0
        for _ in range(58):
            clock.now += 2.0
            rep.mark_dirty(["war"])
            assert rep.due() == min(spaced, clock.now + 30.0)
        assert rep.due() == spaced

    asyncio.run(main())


@pytest.mark.parametrize("full", [False, True], ids=["dirty", "full"])
def test_a_publish_cancelled_at_shutdown_is_done_by_the_publish_at_shutdown(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, renders: Counter[str], full: bool
) -> None:
    # Stopping cancels the republisher mid-publish (its export goes on in its
    # thread), then publishes once more: that last publish must still hold the
    # cancelled one's topics, or the files keep the stopped daemon's last hour
    # unpublished until the next start.
    counting = incremental._publish_topic
    started, release = threading.Event(), threading.Event()

    def blocking(*args: Any) -> Any:
        if not started.is_set():
            started.set()
            release.wait(60)
        return counting(*args)

    monkeypatch.setattr(incremental, "_publish_topic", blocking)
    rep = Republisher(DocumentStore(), lambda: ctx, Metrics(), pace=PACE)

    async def main() -> None:
        rep.mark_dirty(["war"])
        publishing = asyncio.create_task(rep.publish(full=full))
        await asyncio.to_thread(started.wait, 120)
        publishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await publishing
        assert rep.publishes == 0
        release.set()
        await rep.publish()  # what the daemon does once its tasks are cancelled

    asyncio.run(main())
    assert rep.publishes == 1
    assert "topics/war.atom" in rep.documents.documents
    # The cancelled export ran to its end in its thread; the last publish rendered again.
    assert renders["war"] == 2


def test_a_failed_publish_leaves_its_topics_for_the_next(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publish that fails (the export folder cannot be written, or one topic's
    # files cannot) must leave its topics for the next publish (the next change's,
    # or the one at shutdown), not wait for each topic's own next change.
    real = export._write_atomic
    full: list[Path] = []

    def war_disk_full(path: Path, *args: Any, **kwargs: Any) -> Any:
        if "war" in path.name and not full:
            full.append(path)
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(export, "_write_atomic", war_disk_full)
    public = ctx.config.data_dir / "public"
    rep = Republisher(DocumentStore(), lambda: ctx, Metrics(), pace=PACE)

    async def main() -> None:
        public.parent.mkdir(parents=True, exist_ok=True)
        public.write_text("not a folder", encoding="utf-8")
        rep.mark_dirty(["war"])
        await rep.publish()
        assert (rep.publishes, rep.failure) == (
            0,
            "cannot write the export (PublishError, see the log)",
        )
        public.unlink()
        await rep.publish()  # nothing new was marked
        assert (rep.publishes, rep.failure) == (1, None)
        assert rep.failing_topics == {"war"}
        await rep.publish()  # nothing new was marked
        assert rep.publishes == 2

    asyncio.run(main())
    assert full
    assert rep.failing_topics == set()
    assert "topics/war.atom" in rep.documents.documents
    assert (public / "topics" / "war.atom").is_file()


@pytest.mark.parametrize(
    "stage",
    [
        (incremental, "_publish_topic"),  # rendering a topic
        (export, "gzip_body"),  # compressing a document for serving
        (export, "_write_atomic"),  # writing the static files
    ],
    ids=["render", "compress", "write"],
)
def test_healthz_answers_while_a_publish_is_in_progress(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, stage: tuple[object, str]
) -> None:
    module, name = stage
    real = getattr(module, name)
    started, release = threading.Event(), threading.Event()
    timed_out: list[bool] = []

    def blocking(*args: Any, **kwargs: Any) -> Any:
        if not started.is_set():
            started.set()
            # On the event loop this would hold the loop (and /healthz) until the bound.
            if not release.wait(60):
                timed_out.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, blocking)
    documents = DocumentStore()
    rep = Republisher(documents, lambda: ctx, Metrics(), pace=PACE)
    app = create_app(documents, health=lambda: {"status": "ok", "publishes": rep.publishes})
    port = free_port()

    async def main() -> dict[str, Any]:
        server = serve(app, host="127.0.0.1", port=port)
        serving = asyncio.create_task(server.serve())
        try:
            await _until(lambda: server.started, "the server never started")
            publishing = asyncio.create_task(rep.publish(full=True))
            await asyncio.to_thread(started.wait, 120)
            assert rep.pending, "a publish running is pending too"
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
            body: dict[str, Any] = {"code": answer.status_code, **answer.json()}
            release.set()
            await publishing
            return body
        finally:
            release.set()
            server.should_exit = True
            await serving

    body = asyncio.run(main())
    assert not timed_out, "the publish held the event loop"
    assert body == {"code": 200, "status": "ok", "publishes": 0}
    assert rep.publishes == 1
    assert "topics/talks.atom" in documents.documents


# -- dispatch while many sources are due ------------------------------------------------


def test_a_finished_update_starts_a_waiting_source_without_a_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "aggregator.yaml"
    sources = "".join(f"  - {{name: s{i}, url: 'http://127.0.0.1:9/{i}.xml'}}\n" for i in range(3))
    cfg.write_text(
        f"data_dir: var\nallow_networks: ['127.0.0.0/8']\nsources:\n{sources}", encoding="utf-8"
    )
    context = open_context(load_config(cfg))
    started: list[str] = []
    finish: dict[str, asyncio.Event] = {}

    async def update(spec: SourceSpec, ctx: Context, **_: object) -> SourceResult:
        started.append(spec.name)
        await finish.setdefault(spec.name, asyncio.Event()).wait()
        return SourceResult(source=spec.name, outcome=Outcome.OK)

    monkeypatch.setattr(dispatch, "update_source", update)
    results: list[str] = []
    dispatcher = dispatch.Dispatcher(
        lambda: context,
        lambda r: results.append(r.source),
        owner="test",
        lease=timedelta(hours=1),
        max_workers=1,
        catch_up=dispatch.CatchUp(50.0, timedelta(minutes=5)),
    )

    async def main() -> None:
        # One tick (the scheduler is not running): one worker, two sources left waiting.
        assert await dispatcher.tick() == 2
        await _until(lambda: len(started) == 1, "the first update never started")
        for n in (2, 3):
            finish.setdefault(started[-1], asyncio.Event()).set()
            await _until(lambda n=n: len(started) == n, "the free worker was not refilled")
        finish.setdefault(started[-1], asyncio.Event()).set()
        await _until(lambda: len(results) == 3, "the last update never finished")
        await dispatcher.drain(10)

    try:
        asyncio.run(main())
    finally:
        context.close()
    assert sorted(started) == ["s0", "s1", "s2"]


def test_the_parse_workers_start_off_the_loop_on_first_use_and_stop_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At rest the daemon holds no worker process; the first CPU call starts them in a thread."""
    cfg = tmp_path / "aggregator.yaml"
    cfg.write_text("data_dir: var\ningest: {workers: 1, idle_after: 1s}\n", encoding="utf-8")
    calls: list[int] = []
    real = CpuPool.start

    def start(pool: CpuPool) -> None:
        calls.append(threading.get_ident())
        real(pool)

    monkeypatch.setattr(CpuPool, "start", start)
    daemon = Daemon(load_config(cfg), DaemonSettings(watch=False))

    async def main() -> tuple[int, bool, int, bool]:
        await daemon.open()
        try:
            pool = daemon.ctx.stages.pool  # type: ignore[union-attr]
            before = pool.running
            worker = await pool.run("probe", "os:getpid")
            # Wait on progress: the pool stops itself once idle_after has passed.
            while pool.running:
                await asyncio.sleep(0.05)
            return threading.get_ident(), before, worker, pool.running
        finally:
            await daemon.close()

    loop_thread, before, worker, after = asyncio.run(main())
    assert before is False and after is False
    assert worker != os.getpid()
    assert len(calls) == 1
    assert calls[0] != loop_thread
    assert not _children_named("forkserver")


def _children_named(word: str) -> list[int]:
    """This process's live children whose command line holds ``word``."""
    found = []
    for child in Path("/proc").glob("[0-9]*"):
        try:
            stat = (child / "stat").read_text()
            cmdline = (child / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and word in cmdline:
            found.append(int(child.name))
    return found


def _niceness() -> int:
    return os.nice(0)


def test_the_daemons_parse_workers_yield_the_cpu_to_its_event_loop(tmp_path: Path) -> None:
    cfg = tmp_path / "aggregator.yaml"
    cfg.write_text("data_dir: var\ningest: {workers: 1}\n", encoding="utf-8")
    daemon = Daemon(load_config(cfg), DaemonSettings(watch=False, worker_niceness=5))

    async def main() -> int:
        await daemon.open()
        try:
            assert daemon.ctx.stages is not None
            return await daemon.ctx.stages.pool.run("t", _niceness)
        finally:
            await daemon.close()

    assert asyncio.run(main()) == min(os.nice(0) + 5, 19)


def test_the_catch_up_rate_is_a_run_option(tmp_path: Path) -> None:
    cfg = tmp_path / "aggregator.yaml"
    port = free_port()
    # Nothing listens on the sources' port: the updates fail fast, which is all this needs.
    sources = "".join(
        f"  - {{name: s{i}, url: 'http://127.0.0.1:{free_port()}/{i}.xml'}}\n" for i in range(3)
    )
    cfg.write_text(
        f"data_dir: var\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        f"allow_networks: ['127.0.0.0/8']\nsources:\n{sources}",
        encoding="utf-8",
    )
    refused = run_cli(cfg, "run", "--catch-up-rate", "0")
    assert refused.returncode == 2
    assert "--catch-up-rate" in refused.stderr
    with running(cfg, "--catch-up-rate", "2") as daemon, daemon.diagnosed():
        wait_for(
            lambda: "3 remote sources due: starting at most 2 a second" in daemon.log(),
            120,
            "the daemon's catch-up line",
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(120) == 0


def test_one_pool_stopping_idle_leaves_the_other_pools_services_running(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's publishing worker stops idle while its parse workers go on, and back.

    multiprocessing's resource tracker serves both pools: stopped with the
    first, it would unlink the other's semaphores, and that pool's next
    worker could not open its queues.
    """
    from aggregator.engine import pool as pools

    monkeypatch.setattr(pools, "TASKS_PER_CHILD", 1)  # each call in a new worker
    parse, publish = CpuPool(1), CpuPool(1, preload=["aggregator.engine.child"])

    async def main() -> tuple[list[int], list[int], list[int]]:
        pids = [await parse.run("parse", "os:getpid"), await publish.run("publish", "os:getpid")]
        await asyncio.to_thread(publish.stop)
        trackers = _children_named("resource_tracker")
        # new workers of the running pool open its queues by name
        pids += [await parse.run("parse", "os:getpid") for _ in range(3)]
        await asyncio.to_thread(parse.stop)
        return pids, trackers, _children_named("resource_tracker")

    with caplog.at_level(logging.WARNING):
        try:
            pids, while_parsing, after = asyncio.run(main())
        finally:
            parse.close()
            publish.close()
    assert len(set(pids)) == 5
    assert len(while_parsing) == 1
    assert after == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_pools_that_take_turns_never_idle_beside_each_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon's publisher and parse workers: one idle beside the other's work stops.

    A pool that starts stops its idle partner first. Started while the partner
    works, it runs beside it; then the one left idle stops after the grace
    while the other's calls go on, not after its (here ten-minute) ``idle_after``.
    """
    from aggregator.engine import pool as pools

    monkeypatch.setattr(pools, "TURN_GRACE", 0.2)
    parse = CpuPool(1, idle_after=600)
    publish = CpuPool(1, idle_after=600, preload=["aggregator.engine.child"])
    publish.take_turns_with(parse)

    async def main() -> dict[str, bool]:
        seen: dict[str, bool] = {}
        await parse.run("parse", "os:getpid")
        await publish.run("publish", "os:getpid")
        seen["parse after publish"] = parse.running
        await parse.run("parse", "os:getpid")
        seen["publish after parse"] = publish.running
        # The publisher starts while a parse call runs: both work at once.
        parsing = asyncio.create_task(parse.run("parse", "time:sleep", 1.0))
        await asyncio.sleep(0)
        await publish.run("publish", "os:getpid")
        seen["parse beside publish"] = parse.running
        await parsing
        # Each parse call arms the idle publisher's stop again, counted from its
        # last call: that never puts it off while the calls go on.
        async with asyncio.timeout(120):
            while publish.running:
                await parse.run("parse", "os:getpid")
        await asyncio.sleep(0)
        seen["parse at the end"] = parse.running
        return seen

    try:
        seen = asyncio.run(main())
        # Stopped: nothing for a held publish to wait for.
        quiet = publish.quiet_in()
    finally:
        parse.close()
        publish.close()
    assert publish.partner is parse and parse.partner is publish
    assert seen == {
        "parse after publish": False,  # idle: stopped before the publisher started
        "publish after parse": False,
        "parse beside publish": True,  # at work: left alone
        "parse at the end": True,
    }
    assert quiet == 0


def test_the_daemons_publisher_takes_turns_with_its_parse_workers(tmp_path: Path) -> None:
    cfg = tmp_path / "aggregator.yaml"
    cfg.write_text("data_dir: var\ningest: {workers: 1}\n", encoding="utf-8")
    daemon = Daemon(load_config(cfg), DaemonSettings(watch=False))

    async def main() -> tuple[CpuPool | None, CpuPool | None, CpuPool]:
        await daemon.open()
        try:
            stages = daemon.ctx.stages
            assert stages is not None and stages.publisher is not None
            return stages.publisher.partner, stages.pool.partner, stages.pool
        finally:
            await daemon.close()

    partner_of_publisher, partner_of_pool, pool = asyncio.run(main())
    assert partner_of_publisher is pool
    assert partner_of_pool is not None and partner_of_pool is not pool
