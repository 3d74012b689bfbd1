"""Scale-out: ``aggregator worker`` processes on a PostgreSQL store, and the publisher.

Real parts throughout: worker subprocesses, procrastinate's queue in a fresh
PostgreSQL database, a loopback server counting requests per feed, and the
published files compared byte for byte with the embedded mode's.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from lxml import html as lxml_html

from aggregator.publish import MANIFEST_NAME

from .conftest import pg_database, run_cli
from .daemonkit import DaemonProcess, free_port, get, wait_for, wait_progress
from .feedfarm import FeedsServer

T0 = datetime(2026, 3, 1, tzinfo=UTC)


ADMIN_TOKEN = "publisher-status-0123456789"


def write_config(
    path: Path, *, store: str, feeds: FeedsServer, port: int, workers: bool = True
) -> Path:
    sources = "\n".join(
        f"  - {{name: f{i:03d}, url: '{feeds.base}/f{i:03d}.xml'}}" for i in range(feeds.feeds)
    )
    workers_yaml = (
        "workers: {enabled: true, dispatch_every: 1s, stalled_after: 3s}\n" if workers else ""
    )
    path.write_text(
        f"""
data_dir: var
store: {store}
server: {{host: 127.0.0.1, port: {port}, admin_token: {ADMIN_TOKEN}}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: 30m}}
fetch: {{max_connections: 50, max_per_host: 50}}
ingest: {{workers: 0}}
{workers_yaml}sources:
{sources}
topics:
  - {{name: karabakh, query: Karabakh}}
  - {{name: report, query: report, max_items: 200}}
""",
        encoding="utf-8",
    )
    return path


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def sql(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        cursor = conn.execute(query)
        return list(cursor.fetchall()) if cursor.description else []


def scalar(url: str, query: str) -> int:
    [(value,)] = sql(url, query)
    return int(value or 0)  # type: ignore[call-overload]


def tree(folder: Path) -> dict[str, bytes]:
    """The published files (the manifest is the export's bookkeeping: inodes, mtimes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }


@contextmanager
def workers(config: Path, count: int, *args: str) -> Iterator[list[DaemonProcess]]:
    procs: list[DaemonProcess] = []
    try:
        for n in range(count):
            log = config.parent / f"worker{n}.log"
            procs.append(DaemonProcess(config, *args, log=log, command="worker"))
        yield procs
    finally:
        for proc in procs:
            proc.kill()


def logs(procs: list[DaemonProcess]) -> str:
    return "\n".join(f"--- worker {n}\n{p.log()[-2500:]}" for n, p in enumerate(procs))


def saved(url: str) -> int:
    """Sources whose update saved a state not due again within the period."""
    return scalar(url, "SELECT count(*) FROM sources WHERE next_due_at > now()")


def registered(url: str) -> int:
    """Workers beating in the queue's table (0 before the first applied the schema)."""
    try:
        return scalar(url, "SELECT count(*) FROM procrastinate_workers")
    except psycopg.errors.UndefinedTable:
        return 0


def quiet_queue(url: str) -> bool:
    return not scalar(
        url,
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'fetch' "
        "AND task_name = 'aggregator.fetch' AND status IN ('todo', 'doing')",
    )


def test_worker_refuses_an_embedded_store(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\n", encoding="utf-8")
    done = run_cli(config, "worker")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "store: aggregator worker needs a PostgreSQL store" in lines[0]
    assert str(config) in lines[0]


def test_workers_enabled_needs_postgresql(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nworkers: {enabled: true}\n", encoding="utf-8")
    done = run_cli(config, "run")
    assert done.returncode == 2
    assert "workers.enabled: workers need a PostgreSQL store" in done.stderr


FEEDS = 500


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_three_workers_fetch_once_lose_nothing_and_publish_the_same(tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        server = stack.enter_context(FeedsServer(FEEDS))

        # The embedded mode on the same input: the published bytes to match.
        embedded = tmp_path / "embedded"
        embedded.mkdir()
        plain = write_config(
            embedded / "aggregator.yaml", store="sqlite", feeds=server, port=1, workers=False
        )
        done = run_cli(plain, "update", "--json", timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        done = run_cli(plain, "publish", "--out", str(tmp_path / "published-embedded"))
        assert done.returncode == 0, done.stderr
        assert set(server.snapshot().values()) == {1}
        server.counts.clear()

        scaled = tmp_path / "scaled"
        scaled.mkdir()
        config = write_config(scaled / "aggregator.yaml", store=url, feeds=server, port=1)
        procs = stack.enter_context(workers(config, 3, "--concurrency", "8"))

        # First period, one worker killed mid-run.
        with_logs = lambda what: f"{what}\n{logs(procs)}"  # noqa: E731
        try:
            # Start-up (imports, migrations, the queue's schema) has no progress to watch:
            # a safety net only, the wait ends when the third worker registers.
            wait_for(lambda: registered(url) == 3, 180, "three workers taking jobs")
            wait_progress(server.fetched, FEEDS // 4, 90, "feeds fetched before the kill")
        except AssertionError as exc:
            raise AssertionError(with_logs(str(exc))) from None
        victim = procs[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        try:
            wait_progress(lambda: saved(url), FEEDS, 60, "sources updated")
            wait_for(lambda: quiet_queue(url), 60, "an empty fetch queue")
        except AssertionError as exc:
            raise AssertionError(with_logs(str(exc))) from None

        counts = server.snapshot()
        assert sorted(counts) == server.paths(), "a feed was never fetched"
        retried = {
            row[0]
            for row in sql(
                url,
                "SELECT args->>'source' FROM procrastinate_jobs "
                "WHERE task_name = 'aggregator.fetch' AND attempts > 0",
            )
        }
        assert retried, with_logs("the killed worker had no update in flight: nothing retried")
        twice = {path for path, n in counts.items() if n > 1}
        assert all(n <= 2 for n in counts.values()), counts.most_common(3)
        # Only an update the killed worker had in flight is fetched again.
        assert {p.removeprefix("/").removesuffix(".xml") for p in twice} <= retried

        # Nothing lost, nothing doubled: one story per distinct link.
        assert scalar(url, "SELECT count(*) FROM stories") == 3 * FEEDS + FEEDS // 2
        assert scalar(url, "SELECT count(*) FROM entries") == 4 * FEEDS
        # Each changed topic waits in the publish queue once, however many updates changed
        # it ("*", every topic, when a retried update had saved before its worker died).
        pending = dict(
            sql(
                url,
                "SELECT args->'topics'->>0, count(*) FROM procrastinate_jobs "
                "WHERE queue_name = 'publish' AND status = 'todo' GROUP BY 1",
            )
        )
        assert {"karabakh", "report"} <= set(pending) <= {"karabakh", "report", "*"}
        assert set(pending.values()) == {1}
        publish_jobs = scalar(
            url, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'publish'"
        )

        # Same published bytes as the embedded mode (publish runs on any node).
        done = run_cli(config, "publish", "--out", str(tmp_path / "published-scaled"))
        assert done.returncode == 0, done.stderr
        ours = tree(tmp_path / "published-scaled")
        theirs = tree(tmp_path / "published-embedded")
        assert sorted(ours) == sorted(theirs)
        differ = [name for name in ours if ours[name] != theirs[name]]
        assert not differ, differ[:5]

        # Second period, two workers: every feed exactly once more; unchanged feeds
        # change nothing, so nothing more is queued for publishing.
        server.counts.clear()
        sql(url, "UPDATE sources SET next_due_at = now()")
        try:
            wait_progress(lambda: saved(url), FEEDS, 60, "sources updated again")
            wait_for(lambda: quiet_queue(url), 60, "an empty fetch queue")
        except AssertionError as exc:
            raise AssertionError(with_logs(str(exc))) from None
        again = server.snapshot()
        assert sorted(again) == server.paths()
        assert set(again.values()) == {1}, again.most_common(3)
        assert (
            scalar(url, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'publish'")
            == publish_jobs
        )

        # SIGTERM: the survivors finish and exit 0.
        for proc in procs[1:]:
            proc.signal(signal.SIGTERM)
        for proc in procs[1:]:
            assert proc.wait(60) == 0, proc.log()[-2000:]


@pytest.mark.slow
@pytest.mark.postgres
def test_run_with_workers_serves_and_publishes_without_polling(tmp_path: Path) -> None:
    feeds = 20
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        server = stack.enter_context(FeedsServer(feeds))
        config = write_config(tmp_path / "aggregator.yaml", store=url, feeds=server, port=port)
        publisher = DaemonProcess(config, log=tmp_path / "publisher.log")
        stack.callback(publisher.kill)
        with publisher.diagnosed():
            health = wait_for(lambda: get(f"{base}healthz")[0] == 200, 180, "the publisher")
        assert health
        # A second publisher on the same store is refused in one line.
        second = run_cli(config, "run")
        assert second.returncode == 3
        assert "another publisher" in second.stderr

        procs = stack.enter_context(workers(config, 1))

        def served_items() -> int:
            status, body = get(f"{base}topics/report.json")
            return len(json.loads(body)["items"]) if status == 200 else 0

        with publisher.diagnosed():
            wait_progress(served_items, 3 * feeds, 60, "stories served by the publisher")
        assert (tmp_path / "var" / "public" / "topics" / "report.atom").exists()
        # Every fetch went through the queue: one job per source, one request per feed.
        assert set(server.snapshot().values()) == {1}
        assert len(server.snapshot()) == feeds
        jobs = sql(
            url,
            "SELECT DISTINCT args->>'source' FROM procrastinate_jobs "
            "WHERE task_name = 'aggregator.fetch' AND status = 'succeeded'",
        )
        assert len(jobs) == feeds
        health_body = json.loads(get(f"{base}healthz")[1])
        assert health_body["mode"] == "publisher"
        assert health_body["publish_jobs"] >= 1
        # The operator's page, from the states and polls the workers wrote.
        assert get(f"{base}status")[0] == 401
        request = urllib.request.Request(
            f"{base}status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as page:
            dom = lxml_html.fromstring(page.read())
        states = dom.xpath("//li[@data-source]/@data-state")
        assert len(states) == feeds and set(states) == {"ok"}
        # SIGHUP: a topic added to the file is published from what the store holds.
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text + "  - {name: again, query: report, max_items: 200}\n", encoding="utf-8"
        )
        publisher.signal(signal.SIGHUP)

        def again_items() -> int:
            status, body = get(f"{base}topics/again.json")
            return len(json.loads(body)["items"]) if status == 200 else 0

        with publisher.diagnosed():
            wait_progress(again_items, 3 * feeds, 60, "the reloaded topic served")
            # A file that does not load is refused; the publisher goes on.
            config.write_text("sources: [", encoding="utf-8")
            publisher.signal(signal.SIGHUP)
            wait_for(lambda: "reload refused" in publisher.log(), 60, "the refusal logged")
        assert publisher.proc.poll() is None
        assert get(f"{base}topics/again.json")[0] == 200

        for proc in [publisher, *procs]:
            proc.signal(signal.SIGTERM)
        for proc in [publisher, *procs]:
            assert proc.wait(60) == 0, proc.log()[-2000:]


@pytest.mark.postgres
def test_sigterm_finishes_the_updates_in_flight(tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        # Every answer comes 3 s late: the SIGTERM lands while the updates wait for them.
        server = stack.enter_context(FeedsServer(4, delay=3.0))
        config = write_config(tmp_path / "aggregator.yaml", store=url, feeds=server, port=1)
        [worker] = stack.enter_context(workers(config, 1))
        with worker.diagnosed():
            wait_for(lambda: server.fetched() == 4, 180, "four requests in flight")
        worker.signal(signal.SIGTERM)
        assert worker.wait(60) == 0, worker.log()[-2000:]
        # Each update finished and saved: none abandoned, none left running in the queue.
        outcomes = sql(url, "SELECT last_outcome FROM sources ORDER BY name")
        assert outcomes == [("ok",)] * 4
        assert scalar(url, "SELECT count(*) FROM entries") == 16
        assert not scalar(url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_sighup_reloads_a_workers_config(tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        server = stack.enter_context(FeedsServer(4))
        config = tmp_path / "aggregator.yaml"

        def write(feeds: int) -> None:
            sources = "".join(
                f"  - {{name: f{i:03d}, url: '{server.base}/f{i:03d}.xml'}}\n" for i in range(feeds)
            )
            config.write_text(
                f"data_dir: var\nstore: {libpq(url)}\nallow_networks: ['127.0.0.0/8']\n"
                "defaults: {interval: 30m}\n"
                "workers: {enabled: true, dispatch_every: 1s, stalled_after: 3s}\n"
                f"sources:\n{sources}topics:\n  - {{name: report, query: report}}\n",
                encoding="utf-8",
            )

        write(3)
        [proc] = stack.enter_context(workers(config, 1))
        with proc.diagnosed():
            # Start-up (migrations, the queue's schema) ends when the worker registers.
            wait_for(lambda: registered(url) == 1, 180, "the worker taking jobs")
            wait_for(lambda: saved(url) == 3, 120, "the three configured sources updated")
            assert "/f003.xml" not in server.snapshot()
            # A fourth source in the file, and SIGHUP: the worker syncs it and updates it.
            write(4)
            proc.signal(signal.SIGHUP)
            wait_for(lambda: saved(url) == 4, 120, "the source added by the reload updated")
            assert server.snapshot()["/f003.xml"] == 1
            # A broken file is refused; the worker keeps running on the last good config.
            config.write_text("sources: [", encoding="utf-8")
            proc.signal(signal.SIGHUP)
            wait_for(lambda: "reload refused" in proc.log(), 60, "the refusal logged")
            assert proc.proc.poll() is None
            proc.signal(signal.SIGTERM)
            assert proc.wait(120) == 0


def _seed(n: int) -> str:
    words = " ".join(f"w{n}x{k}" for k in range(6))
    return f"Karabakh report number {n}\n\nReport {n} from the Karabakh line: {words} on patrol.\n"


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_one_worker_watches_the_seed_folders_for_the_fleet(tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        seeds = tmp_path / "seeds"
        seeds.mkdir()
        (seeds / "00000.txt").write_text(_seed(0), encoding="utf-8")
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"data_dir: var\nstore: {libpq(url)}\n"
            "workers: {enabled: true, dispatch_every: 1s, stalled_after: 3s}\n"
            # Polled every 12 hours: only the watcher can bring a new file in soon.
            f"sources:\n  - {{name: seeds, path: '{seeds}', interval: 12h}}\n"
            "topics:\n  - {name: karabakh, query: Karabakh}\n",
            encoding="utf-8",
        )
        procs = stack.enter_context(workers(config, 2))
        entries = lambda: scalar(url, "SELECT count(*) FROM entries")  # noqa: E731
        try:
            wait_for(lambda: registered(url) == 2, 180, "two workers taking jobs")
            wait_for(lambda: saved(url) == 1 and entries() == 1, 120, "the first pass")
            watching = lambda: [  # noqa: E731
                p for p in procs if "watching the seed folders for the fleet" in p.log()
            ]
            wait_for(lambda: watching(), 60, "a worker watching the seed folders")
            for n in (1, 2):
                (seeds / f"{n:05d}.txt").write_text(_seed(n), encoding="utf-8")
                wait_for(lambda n=n: entries() == n + 1, 120, f"seed {n} ingested")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs(procs)}") from None
        assert len(watching()) == 1, logs(procs)
        for proc in procs:
            proc.signal(signal.SIGTERM)
        assert [proc.wait(120) for proc in procs] == [0, 0], logs(procs)
