"""The ingest engine's stages: the worker pool, the one writer, and that neither changes a result.

The differential test runs the same feeds (a slice of feedparser's real-world
corpus served over loopback, and this project's seed fixtures) through every
engine setting and compares what a subscriber would see: every topic's
stories with their ids, and every published document byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.engine import CpuPool, Writer
from aggregator.errors import ParseError, SourceError
from aggregator.model import Outcome, SourceKind
from aggregator.update import Context, open_context, render_all, update_source

from .conftest import DATA, REPO, shared_path
from .daemonkit import wait_for

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# -- the pool ---------------------------------------------------------------------


def _raise_parse_error(source: str) -> None:
    raise ParseError(source, "not a feed: <html> at line 1")


def _die() -> None:
    os._exit(3)


def test_pool_runs_work_in_other_processes_and_returns_results() -> None:
    pool = CpuPool(2)
    try:

        async def main() -> list[int]:
            return list(await asyncio.gather(*(pool.run("t", os.getpid) for _ in range(6))))

        pids = asyncio.run(main())
    finally:
        pool.close()
    assert os.getpid() not in pids
    assert 1 <= len(set(pids)) <= 2


def _niceness() -> int:
    return os.nice(0)


def test_workers_run_at_the_niceness_they_were_given() -> None:
    """A daemon's workers yield the CPU to its event loop; a one-shot's run level with it."""
    own = os.nice(0)
    seen = []
    for niceness in (0, 7):
        pool = CpuPool(1, niceness=niceness)
        try:
            seen.append(asyncio.run(pool.run("t", _niceness)))
        finally:
            pool.close()
    assert seen == [own, min(own + 7, 19)]


def _ignores_sigint() -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_workers_leave_ctrl_c_to_their_owner() -> None:
    """Ctrl-C reaches the whole process group; only the owner acts on it (a clean stop)."""
    pool = CpuPool(1)
    try:
        assert asyncio.run(pool.run("probe", _ignores_sigint)) is True
    finally:
        pool.close()


def test_pool_errors_cross_the_process_boundary_whole() -> None:
    pool = CpuPool(1)
    try:
        with pytest.raises(ParseError) as caught:
            asyncio.run(pool.run("wire", _raise_parse_error, "wire"))
    finally:
        pool.close()
    assert isinstance(caught.value, SourceError)
    assert (caught.value.source, caught.value.message) == ("wire", "not a feed: <html> at line 1")
    assert str(caught.value) == "wire: not a feed: <html> at line 1"


def test_a_worker_that_dies_is_replaced_and_the_source_fails_alone() -> None:
    pool = CpuPool(1)
    try:

        async def main() -> tuple[BaseException | int, ...]:
            dead = pool.run("crasher", _die)
            (died,) = await asyncio.gather(dead, return_exceptions=True)
            return died, await pool.run("next", os.getpid)

        dead, pid = asyncio.run(main())
    finally:
        pool.close()
    assert isinstance(dead, ParseError) and "crasher" in str(dead)
    assert isinstance(pid, int) and pid != os.getpid()


_OWNER = """
import os
from aggregator.engine import CpuPool

if __name__ == "__main__":
    pool = CpuPool(2)
    with pool.borrowed() as executor:
        pids = {executor.submit(os.getpid).result() for _ in range(8)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    os.read(0, 1)  # until killed
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_and_fork_server_end_with_their_killed_owner(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(_OWNER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    ) as owner:
        try:
            assert owner.stdout is not None
            workers = [int(p) for p in owner.stdout.readline().split()]
            assert workers and owner.pid not in workers
            stat = Path(f"/proc/{workers[0]}/stat").read_text()
            server = int(stat.rsplit(")", 1)[1].split()[1])
            assert server != owner.pid  # the fork server is their parent
        finally:
            owner.kill()
            owner.wait(30)
    wait_for(
        lambda: not any(_running(p) for p in [*workers, server]),
        60,
        "the killed owner's workers and fork server to exit",
    )


_FORK_SERVER = """
import os, sys
from pathlib import Path
from aggregator.engine import CpuPool

if __name__ == "__main__":
    pool = CpuPool(int(sys.argv[1]))
    try:
        with pool.borrowed() as executor:
            executor.submit(exec, "import lxml.etree").result()
            worker = executor.submit(os.getpid).result()
        parent = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
        mapped = ("lxml" in Path(f"/proc/{p}/maps").read_text() for p in (parent, worker))
        print(parent == os.getpid(), *mapped)
    finally:
        pool.close()
"""


@pytest.mark.parametrize(
    ("workers", "spawned", "parent_holds_parsers"), [(1, True, False), (2, False, True)]
)
def test_several_workers_share_a_fork_server_and_one_is_spawned(
    tmp_path: Path, workers: int, spawned: bool, parent_holds_parsers: bool
) -> None:
    """Several workers share a fork server's imported parsers; one worker imports its own.

    A fork server beside one worker, whether it imported the CPU stage or
    not, is only another process holding pages.
    """
    script = tmp_path / "owner.py"
    script.write_text(_FORK_SERVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(script), str(workers)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    by_owner, parent_lxml, worker_lxml = out.stdout.split()
    assert by_owner == str(spawned) and worker_lxml == "True"
    assert parent_lxml == str(parent_holds_parsers)


_CONSOLE_SCRIPT = """
import sys
from {module} import {attr}  # what pip writes into the ``aggregator`` console script

if __name__ == "__main__":
    from aggregator.engine import CpuPool

    pool = CpuPool(1)
    try:
        with pool.borrowed() as executor:
            probe = "sorted(m for m in __import__('sys').modules if m.startswith('aggregator.cli'))"
            print(executor.submit(eval, probe).result())
    finally:
        pool.close()
"""


def test_workers_of_the_console_script_do_not_import_the_cli(tmp_path: Path) -> None:
    """A worker runs its owner's main script again: the console script's import costs nothing.

    With the command group as the entry point, every parse worker of
    ``aggregator run`` imported the CLI and the config models (~10 MiB each).
    """
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["aggregator"].partition(":")
    script = tmp_path / "aggregator"
    script.write_text(_CONSOLE_SCRIPT.format(module=module, attr=attr))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    assert out.stdout.split() == ["[]"]
    usage = subprocess.run(
        [sys.executable, "-c", f"from {module} import {attr}; {attr}()", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    assert "update" in usage.stdout and "run" in usage.stdout


def test_pool_with_no_workers_runs_in_threads_of_this_process() -> None:
    pool = CpuPool(0)
    try:
        pid = asyncio.run(pool.run("t", os.getpid))
    finally:
        pool.close()
    assert pid == os.getpid() and not pool.processes


# -- the writer -------------------------------------------------------------------


class _Recorder:
    """An apply function that records batches and can be held shut."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, writes: Sequence[int]) -> list[int]:
        self.entered.set()
        self.gate.wait(timeout=60)
        if any(w < 0 for w in writes):
            raise ValueError(f"negative write in {list(writes)}")
        self.batches.append(list(writes))
        return [w * 10 for w in writes]


def test_writer_applies_in_order_and_batches_what_queued_up() -> None:
    rec = _Recorder()
    writer: Writer[int, int] = Writer(rec, capacity=100)

    async def main() -> list[int]:
        rec.gate.clear()
        first = asyncio.ensure_future(writer.submit(0))
        await asyncio.to_thread(rec.entered.wait, 60)  # the writer holds write 0
        rest = [asyncio.ensure_future(writer.submit(n)) for n in range(1, 50)]
        await asyncio.sleep(0)  # let the submissions queue (not a wait for time)
        while writer.queued() < 49:
            await asyncio.sleep(0.001)
        rec.gate.set()
        return [await first, *[await r for r in rest]]

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results == [n * 10 for n in range(50)]
    assert [w for batch in rec.batches for w in batch] == list(range(50))
    assert rec.batches[0] == [0] and len(rec.batches) == 2, "the 49 queued writes: one commit"


def test_writer_tells_a_submitter_its_write_is_queued_before_it_commits() -> None:
    rec = _Recorder()
    writer: Writer[int, int] = Writer(rec)
    seen: list[str] = []

    async def main() -> int:
        rec.gate.clear()  # nothing commits until the test says
        queued = asyncio.Event()

        def on_queued() -> None:
            seen.append("queued")
            queued.set()

        submit = asyncio.ensure_future(writer.submit(7, queued=on_queued))
        await asyncio.wait_for(queued.wait(), timeout=60)
        seen.append(f"committed: {len(rec.batches)}")
        rec.gate.set()
        return await submit

    try:
        result = asyncio.run(main())
    finally:
        writer.close()
    assert result == 70
    assert seen == ["queued", "committed: 0"]
    assert rec.batches == [[7]]


def test_writer_calls_after_batch_once_a_batch_is_committed_in_its_thread() -> None:
    rec = _Recorder()
    seen: list[tuple[int, str]] = []
    writer: Writer[int, int] = Writer(
        rec,
        after_batch=lambda: seen.append((len(rec.batches), threading.current_thread().name)),
    )

    async def main() -> None:
        for n in range(3):  # one at a time: three batches
            assert await writer.submit(n) == n * 10

    try:
        asyncio.run(main())
    finally:
        writer.close()
    assert seen == [(1, "store-writer"), (2, "store-writer"), (3, "store-writer")]


def test_a_failing_after_batch_never_stops_the_writer(caplog: pytest.LogCaptureFixture) -> None:
    rec = _Recorder()

    def fail() -> None:
        raise RuntimeError("boom")

    writer: Writer[int, int] = Writer(rec, after_batch=fail)

    async def main() -> list[int]:
        return [await writer.submit(n) for n in range(3)]

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results == [0, 10, 20]
    assert sum("after a batch" in r.message for r in caplog.records) == 3


def test_the_ingest_writer_hands_free_heap_pages_back_after_each_batch(tmp_path: Path) -> None:
    from aggregator.engine.heap import malloc_trim
    from aggregator.store import open_store
    from aggregator.update.context import Stages

    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    stages = Stages.for_store(store, load_config(config))
    try:
        assert stages.writer._after_batch is malloc_trim
    finally:
        stages.close()
        store.close()


def test_writer_failure_fails_only_the_bad_write() -> None:
    rec = _Recorder()
    writer: Writer[int, int] = Writer(rec)

    async def main() -> list[int | BaseException]:
        rec.gate.clear()
        blocker = asyncio.ensure_future(writer.submit(1))
        await asyncio.to_thread(rec.entered.wait, 60)
        others = [asyncio.ensure_future(writer.submit(n)) for n in (2, -3, 4)]
        while writer.queued() < 3:
            await asyncio.sleep(0.001)
        rec.gate.set()
        return list(await asyncio.gather(blocker, *others, return_exceptions=True))

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results[:2] == [10, 20] and results[3] == 40
    assert isinstance(results[2], ValueError)


def test_writer_queue_is_bounded() -> None:
    rec = _Recorder()
    writer: Writer[int, int] = Writer(rec, capacity=4)

    async def main() -> int:
        rec.gate.clear()
        tasks = [asyncio.ensure_future(writer.submit(n)) for n in range(20)]
        await asyncio.to_thread(rec.entered.wait, 60)
        for _ in range(50):  # give every submitter its chance to queue
            await asyncio.sleep(0)
        most = writer.queued()
        rec.gate.set()
        await asyncio.gather(*tasks)
        return most

    try:
        most = asyncio.run(main())
    finally:
        writer.close()
    assert most <= 4 - 1, "one write is being applied, at most capacity-1 more wait in the queue"
    assert sum(len(b) for b in rec.batches) == 20


# -- the engine changes no result ---------------------------------------------------


OWN = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Own wire</title><link>http://wire.test/</link>
<description>d</description>
<item><title>The glacier survey</title><link>http://wire.test/1?utm_source=x</link>
<guid>w1</guid><pubDate>Mon, 16 Nov 2026 10:00:00 GMT</pubDate>
<description>&lt;p&gt;The survey of the glacier
&lt;a href="/map"&gt;map&lt;/a&gt;.&lt;/p&gt;</description></item>
<item><title>The pass reopens</title><link>http://wire.test/2</link><guid>w2</guid>
<description>The pass is open again.</description></item>
</channel></rss>
"""


def _corpus_feeds() -> list[Path]:
    """A fixed, varied slice of feedparser's well-formed corpus that yields entries."""
    root = shared_path("corpus", "feedparser", "wellformed")
    picked: list[Path] = []
    for folder in ("rss", "atom10", "base", "sanitize", "amp", "rdf", "lang"):
        files = sorted((root / folder).glob("*.xml"))
        picked.extend(files[:: max(1, len(files) // 6)])
    return picked


@dataclass
class _Site:
    server: HTTPServer
    feeds: dict[str, bytes]


@pytest.fixture
def site(httpserver: HTTPServer) -> Iterator[_Site]:
    feeds = {f"/f{n:03d}.xml": path.read_bytes() for n, path in enumerate(_corpus_feeds())}
    feeds["/own.xml"] = OWN

    def handler(request: Request) -> Response:
        # No validators: every poll is a 200, so the body-hash skip has work to do.
        body = feeds.get(request.path)
        if body is None:
            return Response(status=404)
        return Response(body, content_type="application/xml")

    for path in feeds:
        httpserver.expect_request(path).respond_with_handler(handler)
    yield _Site(httpserver, feeds)
    httpserver.clear()


def _config(tmp: Path, site: _Site, *, workers: int, fast: bool, skip: bool) -> Path:
    seeds = tmp / "seeds"
    if not seeds.exists():
        seeds.mkdir()
        for path in sorted((DATA / "seeds").iterdir()):
            if not path.name.endswith(".json"):
                (seeds / path.name).write_bytes(path.read_bytes())
    sources = "\n".join(
        f"  - {{name: feed{path.strip('/').split('.')[0]}, url: '{site.server.url_for(path)}'}}"
        for path in sorted(site.feeds)
    )
    ingest = f"{{workers: {workers}, fast_parser: {fast}, skip_unchanged_body: {skip}}}".lower()
    text = f"""
data_dir: data-{workers}-{fast}-{skip}
allow_networks: [127.0.0.0/8]
ingest: {ingest}
sources:
  - {{name: seeds, path: seeds}}
{sources}
topics:
  - {{name: everything, title: All, query: 'a OR the OR of OR and OR to OR in OR is OR test'}}
  - {{name: karabakh, title: Karabakh, query: Nagorno-Karabakh}}
"""
    path = tmp / f"config-{workers}-{fast}-{skip}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(config_path: Path, site: _Site) -> tuple[list[dict[str, bytes]], list[int]]:
    """Three passes (first, same bytes again, one feed changed).

    Returns the site after each pass, and per pass how many feeds answered
    200 and were not parsed (same bytes as last time).
    """
    clock_now = [START]
    ctx: Context = open_context(load_config(config_path), clock=lambda: clock_now[0])
    out: list[dict[str, bytes]] = []
    skipped = [0, 0, 0]
    changed = "/own.xml"
    original = site.feeds[changed]
    try:
        for n in range(3):
            clock_now[0] = START + timedelta(hours=n)
            if n == 2:
                site.feeds[changed] = original.replace(b"open again", b"open again after the storm")

            async def one_pass(n: int) -> None:
                for spec in ctx.config.sources:  # in order: ids do not depend on timing
                    result = await update_source(spec, ctx)
                    if spec.kind is SourceKind.FILES:
                        assert result.outcome is Outcome.OK, result.error
                    elif (result.outcome, result.http_status) == (Outcome.NOT_MODIFIED, 200):
                        skipped[n] += 1

            asyncio.run(one_pass(n))
            out.append({path: doc.body for path, doc in render_all(ctx).items()})
    finally:
        site.feeds[changed] = original
        ctx.close()
    return out, skipped


def test_every_engine_setting_publishes_the_same_bytes(tmp_path: Path, site: _Site) -> None:
    settings = [
        {"workers": 0, "fast": False, "skip": False},  # the reference: feedparser, threads
        {"workers": 2, "fast": False, "skip": False},  # worker processes
        {"workers": 0, "fast": True, "skip": False},  # the fast parser
        {"workers": 0, "fast": False, "skip": True},  # the body-hash skip
        {"workers": 2, "fast": True, "skip": True},  # everything on (the default)
    ]
    runs = []
    for setting in settings:
        sites, skipped = _run(_config(tmp_path, site, **setting), site)  # type: ignore[arg-type]
        if setting["skip"]:
            # Pass 2 serves every feed's same bytes again; pass 3 changed one of them.
            assert skipped[0] == 0 and skipped[1] >= len(site.feeds) - 5, skipped
            assert skipped[2] == skipped[1] - 1, skipped
        else:
            assert skipped == [0, 0, 0]
        runs.append((setting, sites))
    reference = runs[0][1]
    everything = [doc for path, doc in reference[0].items() if path.endswith("everything.atom")]
    assert everything and everything[0].count(b"<entry") >= 20, "the corpus must publish entries"
    assert reference[2] != reference[1], "the changed feed must change what is published"
    for setting, run in runs[1:]:
        for n, (expected, got) in enumerate(zip(reference, run, strict=True)):
            assert got.keys() == expected.keys(), (setting, n)
            differing = [p for p in expected if got[p] != expected[p]]
            assert not differing, f"{setting}, pass {n + 1}: {differing[:5]} differ"


@pytest.mark.parametrize(
    ("cores", "apart", "configured", "parsers", "publishers"),
    [
        (1, False, "", 1, None),
        (2, False, "", 1, None),
        (4, False, "", 3, None),
        (2, True, "", 1, 1),
        (4, True, "", 3, 1),
        (2, False, "3", 3, None),
        (2, True, "3", 3, 1),
        (2, True, "0", 0, None),
    ],
)
def test_the_workers_leave_a_core_to_the_process_owning_them_and_the_daemon_publishes_apart(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cores: int,
    apart: bool,
    configured: str,
    parsers: int,
    publishers: int | None,
) -> None:
    from aggregator.engine import pool
    from aggregator.store import open_store
    from aggregator.update.context import PUBLISHER_PRELOAD, Stages

    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    config = tmp_path / "aggregator.yaml"
    ingest = f"ingest: {{workers: {configured}}}\n" if configured else ""
    config.write_text(f"data_dir: var\nsources: []\ntopics: []\n{ingest}", encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    stages = Stages.for_store(store, load_config(config), worker_niceness=10, publish_apart=apart)
    try:
        assert stages.pool.workers == parsers
        if publishers is None:
            assert stages.publisher is None
        else:
            assert stages.publisher is not None
            assert stages.publisher.workers == publishers
            # it loads the renderer, not the parsers
            assert stages.publisher.preload == list(PUBLISHER_PRELOAD)
    finally:
        stages.close()
        store.close()
