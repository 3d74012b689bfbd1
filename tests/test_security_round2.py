"""Regression tests for the second security review (issue 30), one section per finding.

Each test reproduces what the finding did on the code before its fix, against
the real parts where one is involved (the daemon as a subprocess, real sockets,
real folders). The map from threat to defence to test is ``docs/security.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.engine.pages import extraction_lane
from aggregator.engine.pool import CpuPool
from aggregator.errors import BackoffError, ConfigError, FetchError, ParseError, StoreError
from aggregator.model import RawEntry, SourceResult
from aggregator.normalise import balance_bidi, normalise_entry
from aggregator.parse import parse_page
from aggregator.parse.article import MAX_MARKDOWN_CHARS, parse_markdown_article
from aggregator.publish.export import PublishReport, WriteReport
from aggregator.runtime.fds import budget
from aggregator.runtime.health import Health
from aggregator.runtime.metrics import Metrics
from aggregator.runtime.republish import failed_topics
from aggregator.sources.http import Fetcher
from aggregator.text.bounds import MAX_PAGE_BYTES
from aggregator.text.plain import MAX_MARKS, cap_marks, tokens
from aggregator.topics.pattern import compile_pattern
from aggregator.update import open_context, update_all
from aggregator.web import ACCEPT_IN_FLIGHT, DocumentStore, create_app

from .conftest import REPO, run_cli
from .daemonkit import free_port, get, wait_for
from .publish_helpers import RunningServer, free_socket, run_server
from .test_full_content import rss
from .test_full_content import write_config as write_full_content_config

# -- 1: client connections cannot take the descriptors the daemon needs ------------


def start_daemon(config: Path, nofile: int) -> subprocess.Popen[bytes]:
    """``aggregator run`` with a hard descriptor limit of ``nofile``; output to daemon.log."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATA_DIR", "AGGREGATOR_LOG_FORMAT"):
        env.pop(key, None)
    with open(config.parent / "daemon.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            stdout=log,
            stderr=log,
            env=env,
            preexec_fn=limit,
        )


@pytest.fixture
def limited_daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("Karabakh talks\n\nKarabakh talks resume.\n")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        "sources: [{name: seeds, path: seeds}]\ntopics: [{name: k, query: Karabakh}]\n",
        encoding="utf-8",
    )
    proc = start_daemon(config, 600)
    try:
        yield proc, port
    finally:
        proc.kill()
        proc.wait(10)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def test_idle_connections_never_take_the_daemons_descriptors(
    limited_daemon: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = limited_daemon
    health = f"http://127.0.0.1:{port}/healthz"
    wait_for(lambda: get(health)[0] == 200, 60, "the daemon to serve")
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], open_fds(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    held: list[socket.socket] = []
    try:
        for _ in range(900):  # 1.5x the daemon's descriptor limit, all idle
            held.append(socket.create_connection(("127.0.0.1", port)))
        # A client arriving now is served: an idle connection made room for it.
        status, body = get(health, timeout=30)
        assert status == 200, body
    finally:
        done.set()
        sampler.join(10)
        for sock in held:
            sock.close()
    assert peak[0] < 600, f"the daemon reached {peak[0]} of its 600 descriptors"
    log = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")
    assert "Too many open files" not in log
    assert log.count("connection limit") <= 2, log[-2000:]
    assert f"{budget(600, 20, ACCEPT_IN_FLIGHT).connections} for client connections" in log


def test_budget_keeps_a_reserve_and_caps_connections() -> None:
    at_1024 = budget(1024, 20, ACCEPT_IN_FLIGHT)
    assert at_1024.connections + at_1024.reserve == 1024
    assert at_1024.reserve > ACCEPT_IN_FLIGHT + 20
    assert budget(65536, 20, ACCEPT_IN_FLIGHT).connections == 8192
    assert budget(64, 20, ACCEPT_IN_FLIGHT).connections == 16


def test_connections_beyond_the_limit_replace_the_longest_idle() -> None:
    app = create_app(DocumentStore())
    with run_server(app, free_socket(), max_connections=5) as server:
        first = socket.create_connection(("127.0.0.1", server.port))
        first.settimeout(30)
        others = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        try:
            # The oldest idle connection was closed to make room: it reads EOF.
            assert first.recv(1) == b""
            status, _ = get(server.base_url + "healthz", timeout=30)
            assert status == 200
        finally:
            first.close()
            for sock in others:
                sock.close()


def _keep_alive_get(sock: socket.socket) -> bytes:
    """One ``GET /healthz`` on a kept-alive connection; the response's status line."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_the_connection_replaced_is_the_one_idle_longest_not_the_oldest() -> None:
    # Accepted first, but it asked again since: the one idle longest is the second.
    app = create_app(DocumentStore())
    with run_server(app, free_socket(), max_connections=3) as server:
        opened = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        oldest, second, third = opened
        try:
            for sock in opened:
                sock.settimeout(30)
                assert _keep_alive_get(sock) == b"HTTP/1.1 200 OK"
            assert _keep_alive_get(oldest) == b"HTTP/1.1 200 OK"
            opened.append(socket.create_connection(("127.0.0.1", server.port)))
            assert second.recv(1) == b""  # closed to make room
            assert _keep_alive_get(oldest) == b"HTTP/1.1 200 OK"
            assert _keep_alive_get(third) == b"HTTP/1.1 200 OK"
        finally:
            for sock in opened:
                sock.close()


@pytest.fixture
def served() -> Iterator[RunningServer]:
    # Short limits, so the tests that wait for one to cut a slow client take seconds.
    with run_server(
        create_app(DocumentStore()), free_socket(), header_timeout=1.0, body_timeout=2.0
    ) as server:
        yield server


def test_a_trickled_request_body_is_cut_off(served: RunningServer) -> None:
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sock.settimeout(0.5)
        # One byte every half second: each restarts uvicorn's keep-alive timer.
        while time.monotonic() < deadline:
            try:
                if sock.recv(65536) == b"":
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:
                break
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            raise AssertionError("a trickled body kept the connection open for 60 s")


def test_the_service_unit_raises_the_descriptor_limit() -> None:
    unit = (REPO / "config" / "aggregator.service").read_text(encoding="utf-8")
    assert "\nLimitNOFILE=65536\n" in unit
    assert "--ulimit nofile=65536:65536" in (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_a_repeated_error_is_logged_once_per_interval() -> None:
    import logging

    from aggregator.daemon.logs import RepeatFilter

    now = [0.0]
    records: list[str] = []
    logger = logging.getLogger("test.repeat")
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.addFilter(RepeatFilter(10.0, clock=lambda: now[0]))
    try:
        for _ in range(5000):
            logger.error("socket.accept() out of system resource\nsocket: <fd=29>")
        logger.error("another line")
        now[0] = 11.0
        logger.error("socket.accept() out of system resource\nsocket: <fd=29>")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 3
    assert "4999 like it dropped" in records[2]


# -- 2: a folder that cannot be listed keeps its stories ---------------------------


def run_without_override(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI without root's power to read a folder whatever its mode.

    Under root, ``setpriv`` drops the capabilities that bypass file modes,
    so a folder's ``chmod 0`` refuses listing as it does for any user.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv (util-linux): cannot refuse a listing")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env.pop("AGGREGATOR_CONFIG", None)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def seed_folder(root: Path) -> Path:
    seeds = root / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "top.txt").write_text("Karabakh top\n\nKarabakh top story body.\n")
    for i in range(3):
        (seeds / "sub" / f"s{i}.txt").write_text(
            f"Karabakh story {i}\n\nKarabakh talks number {i} resumed in Geneva.\n"
        )
    config = root / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nsources: [{name: seeds, path: seeds}]\n"
        "topics: [{name: k, query: Karabakh}]\n",
        encoding="utf-8",
    )
    return config


def entry_count(root: Path) -> int:
    with sqlite3.connect(root / "var" / "aggregator.db") as db:
        return int(db.execute("select count(*) from entries").fetchone()[0])


def test_a_folder_that_cannot_be_listed_keeps_its_stories(tmp_path: Path) -> None:
    config = seed_folder(tmp_path)
    first = run_without_override(config, "update")
    assert first.returncode == 0, first.stderr
    assert entry_count(tmp_path) == 4
    (tmp_path / "seeds" / "sub").chmod(0)
    try:
        second = run_without_override(config, "update")
    finally:
        (tmp_path / "seeds" / "sub").chmod(0o755)
    assert "cannot list folder" in second.stdout + second.stderr
    assert entry_count(tmp_path) == 4


# -- 14: a seed file unreadable once is read again when it can be -----------------


def test_an_unreadable_seed_is_read_once_its_permissions_are_fixed(tmp_path: Path) -> None:
    config = seed_folder(tmp_path)
    top = tmp_path / "seeds" / "top.txt"
    top.chmod(0)
    first = run_without_override(config, "update")
    assert "cannot read: permission denied" in first.stdout + first.stderr
    assert entry_count(tmp_path) == 3
    top.chmod(0o644)  # a chmod changes no mtime
    second = run_without_override(config, "update")
    assert second.returncode == 0, second.stderr
    assert entry_count(tmp_path) == 4


# -- 3: a header value never leaves in an error, and a bad one fails at load ------


def test_a_header_value_with_a_newline_never_leaks_in_the_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data("<rss/>")

    async def attempt() -> str:
        async with Fetcher(allow_networks=("127.0.0.0/8",)) as fetcher:
            try:
                await fetcher.fetch(
                    httpserver.url_for("/feed"),
                    source="wire",
                    headers={"Authorization": "Bearer s3cr3t-t0ken\n"},
                )
            except FetchError as exc:
                return str(exc)
        raise AssertionError("an illegal header value was sent")

    message = asyncio.run(attempt())
    assert "s3cr3t" not in message
    assert "wire" in message


def test_library_messages_quoting_a_header_value_are_redacted() -> None:
    error = FetchError("wire", "LocalProtocolError: Illegal header value b'Bearer s3cr3t\\n'")
    assert "s3cr3t" not in str(error)
    assert "Illegal header value ***" in str(error)


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        (
            'sources: [{name: a, url: "https://e.org/f",\n'
            '  headers: {Authorization: "Bearer s3cr3t\\n"}}]',
            "sources[0].headers",
        ),
        ('server: {base_url: "https://e.org/s3cr3t\\r"}', "server.base_url"),
        ('site: {author: {email: "s3cr3t@e.org\\r"}}', "site.author.email"),
        ('site: {hub: "https://hub.e.org/s3cr3t\\n"}', "site.hub"),
    ],
)
def test_control_characters_in_headers_urls_and_addresses_fail_at_load(
    tmp_path: Path, yaml: str, key: str
) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"data_dir: var\n{yaml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert key in str(caught.value)
    assert "control character" in str(caught.value)
    if "headers" in key:
        assert "s3cr3t" not in str(caught.value)


# -- 4: runs of combining marks are cut before normalisation ------------------------


def longest_mark_run(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) else 0
        best = max(best, run)
    return best


def test_runs_of_combining_marks_are_cut_before_normalising() -> None:
    # Alternating combining classes: canonical reordering is quadratic in the run.
    zalgo = "Karabakh " + "e" + "\u0301\u0316" * 20_000 + " talks"
    raw = RawEntry(identity="z", title=zalgo, summary=zalgo, link="https://e.org/z")
    item = normalise_entry(raw, source="wire", origin=None, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert longest_mark_run(item.title) <= MAX_MARKS
    assert longest_mark_run(item.content_html) <= MAX_MARKS
    assert tokens(zalgo)[0] == "karabakh" and tokens(zalgo)[-1] == "talks"
    assert cap_marks("Ünïcödé e\u0301") == "Ünïcödé e\u0301"  # ordinary text untouched


# -- 6: a 429 behind a redirect backs off the host that answered ------------------


def test_a_429_behind_a_redirect_backs_off_the_host_that_answered(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    port = httpserver.port
    a_host, b_host = f"http://a.test:{port}", f"http://b.test:{port}"
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss(a_host, [("p", "/news/p.html")]), content_type="application/rss+xml"
    )
    # The link on host A redirects to host B, which asks for a pause.
    httpserver.expect_request("/news/p.html").respond_with_data(
        "", status=302, headers={"Location": f"{b_host}/limited"}
    )
    httpserver.expect_request("/limited").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    httpserver.expect_request("/other.xml").respond_with_data(
        rss(a_host, []), content_type="application/rss+xml"
    )
    config = write_full_content_config(tmp_path, httpserver.url_for("/feed.xml"))
    ctx = open_context(config)

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async def go() -> tuple[SourceResult, int, BaseException | None]:
        async with Fetcher(allow_networks=("127.0.0.1/32",), resolver=resolver) as fetcher:
            result = (await update_all(replace(ctx, fetcher=fetcher)))[0]
            # Host A did not ask for anything: it is still asked.
            fine = (await fetcher.fetch(f"{a_host}/other.xml", source="other")).status
            try:
                await fetcher.fetch(f"{b_host}/other.xml", source="other")
            except BackoffError as exc:
                return result, fine, exc
            return result, fine, None

    try:
        result, fine, refused = asyncio.run(go())
    finally:
        ctx.close()
    assert "HTTP 429" in " ".join(result.problems)
    assert fine == 200
    assert isinstance(refused, BackoffError)


# -- 7: a lone surrogate from a JSON Feed; a topic that cannot render is visible ---

SURROGATE_FEED = (
    '{"version": "https://jsonfeed.org/version/1.1", "title": "Wire \\ud800 feed",'
    ' "home_page_url": "https://e.org/", "feed_url": "https://e.org/f\\udfff.json",'
    ' "items": [{"id": "1", "url": "https://e.org/1", "title": "Karabakh \\ud800 talks",'
    ' "content_text": "Karabakh talks \\udfff resume", "authors": [{"name": "A \\ud800"}],'
    ' "tags": ["x\\ud800"]}]}'
)


def stored_surrogate_feed(server: HTTPServer, tmp_path: Path) -> Path:
    """A config polling ``server``'s surrogate-laden JSON Feed, updated once."""
    server.expect_request("/feed.json").respond_with_data(
        SURROGATE_FEED, content_type="application/feed+json"
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\nallow_networks: ['127.0.0.1/32']\n"
        f"sources: [{{name: wire, url: '{server.url_for('/feed.json')}'}}]\n"
        "topics: [{name: k, query: Karabakh}]\n",
        encoding="utf-8",
    )
    assert run_cli(config, "update").returncode == 0
    return config


def test_lone_surrogates_from_a_json_feed_never_stop_its_topic(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = stored_surrogate_feed(httpserver, tmp_path)
    published = run_cli(config, "publish")
    assert published.returncode == 0, published.stderr
    atom = (tmp_path / "var" / "public" / "topics" / "k.atom").read_bytes()
    assert b"Karabakh" in atom and b"Wire" in atom
    atom.decode("utf-8")  # strict: no surrogate made it through


def test_a_topic_that_cannot_render_fails_publish_and_health(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = stored_surrogate_feed(httpserver, tmp_path)
    # A row stored by an older version, before the feed's title was cleaned.
    with sqlite3.connect(tmp_path / "var" / "aggregator.db") as db:
        db.execute("""update entries set origin = '{"source": "wire", "title": "W \\ud800"}'""")
    published = run_cli(config, "publish")
    assert published.returncode == 4
    assert "topic 'k': cannot render" in published.stderr


def test_health_counts_topics_that_cannot_render_until_they_do() -> None:
    failed = PublishReport(
        documents={},
        topics=("b",),
        rendered=1,
        kept=0,
        files=WriteReport((), (), ()),
        errors=("topic 'a': cannot render: surrogates not allowed",),
        failed=("a",),
    )
    assert failed_topics(failed, ["a", "b", "c"]) == {"a"}
    # A later publish that renders only "c" leaves "a" failing; one that renders "a" clears it.
    only_c = replace(failed, topics=("c",), errors=(), failed=())
    assert failed_topics(only_c, ["a", "b", "c"], {"a"}) == {"a"}
    assert failed_topics(replace(only_c, topics=("a",)), ["a", "b", "c"], {"a"}) == set()
    health = Health(Metrics(), tick_interval=60.0)
    body = health.body(in_flight=0, documents=3, topics_failing=1)
    assert body["status"] == "unhealthy"
    assert body["problems"] == ["1 topic(s) cannot be rendered"]


# -- 11: a full disk is one line and exit 4 ----------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs filled to the last byte (needs root and mount; skipped otherwise)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace')}")
    try:
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while os.write(filler, b"\0" * 4096):
                pass
        os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_exit_4(tmp_path: Path, full_disk: Path) -> None:
    config = seed_folder(tmp_path)
    assert run_cli(config, "update").returncode == 0
    published = run_cli(config, "publish", "--out", str(full_disk / "out"))
    assert published.returncode == 4, published.stderr
    assert "Traceback" not in published.stderr
    assert "No space left on device" in published.stderr


# -- 5: article extraction is bounded before lxml, and cannot take every worker ---


def article_page(inside: str) -> bytes:
    return (
        "<html><head><title>t</title></head><body><article>"
        + inside
        + "<p>"
        + "Zebra herd story text. " * 50
        + "</p></article></body></html>"
    ).encode()


@pytest.mark.parametrize(
    ("inside", "reason"),
    [
        # lxml's HTML parser is quadratic in one tag's attributes (166,000 ran past 300 s).
        ("<div " + " ".join(f"a{i}=1" for i in range(5000)) + ">x</div>", "5,000 attributes"),
        ("<div>" * 20_000 + "x" + "</div>" * 20_000, "elements deep"),
        ("<p>" + "word " * (MAX_PAGE_BYTES // 5) + "</p>", "byte limit"),
    ],
    ids=["attributes", "nesting", "size"],
)
def test_costly_pages_are_refused_before_parsing(inside: str, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_page(
            article_page(inside),
            url="https://e.org/a",
            headers={"content-type": "text/html"},
            source="wire",
        )
    assert reason in str(caught.value)


def test_an_ordinary_page_is_still_extracted() -> None:
    html = parse_page(
        article_page("<p>Zebra <a href='/x'>link</a>.</p>" * 2000),
        url="https://e.org/a",
        headers={"content-type": "text/html"},
        source="wire",
    )
    assert "Zebra herd story text." in html


def test_extraction_holds_at_most_half_the_workers() -> None:
    async def held(workers: int) -> int:
        lane = extraction_lane(CpuPool(workers))
        got = 0
        while not lane.locked():
            await lane.acquire()
            got += 1
        return got

    assert asyncio.run(held(2)) == 1
    assert asyncio.run(held(8)) == 4
    assert asyncio.run(held(0)) == 1


# -- 12: no redirect is built from the Host header ---------------------------------


def test_a_trailing_slash_is_not_redirected_to_the_host_sent(served: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        sock.settimeout(30)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:200]
    assert b"evil.example" not in answer


# -- 13: the request-head limit holds when the head arrives in one read ------------


@pytest.mark.parametrize("size", [42_000, 120_000])
def test_a_huge_head_in_one_read_gets_431(served: RunningServer, size: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(head)
        sock.settimeout(30)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_many_headers_in_one_read_get_431(served: RunningServer) -> None:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(1000))
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        sock.settimeout(30)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


# -- 15: database passwords never leave in store errors ----------------------------


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://aggregator:s3cretpw@127.0.0.1:1/nodb",
        "postgresql://aggregator@127.0.0.1:1/nodb?password=s3cretpw",
    ],
)
def test_migrate_never_prints_the_database_password(tmp_path: Path, target: str) -> None:
    config = seed_folder(tmp_path)
    migrated = run_cli(config, "migrate", "--to", target)
    assert migrated.returncode == 3
    assert "cannot open store" in migrated.stderr
    assert "s3cretpw" not in migrated.stdout + migrated.stderr


def test_store_errors_hide_connection_string_passwords() -> None:
    error = StoreError("cannot connect: invalid dsn: host=db user=a password='s3cret pw' x")
    assert "s3cret" not in str(error)


# -- 18: a YAML alias bomb fails at load ---------------------------------------------

ALIAS_BOMB = """\
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
data_dir: var
"""


def test_a_yaml_alias_bomb_fails_check_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(ALIAS_BOMB, encoding="utf-8")
    checked = run_cli(config, "check", timeout=60)
    assert checked.returncode == 2
    assert "expands to more than" in checked.stderr


def test_yaml_anchors_of_ordinary_size_still_load(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nsources:\n  - {name: a, url: 'https://e.org/a', tags: &t [x, y]}\n"
        "  - {name: b, url: 'https://e.org/b', tags: *t}\n",
        encoding="utf-8",
    )
    assert load_config(config).sources[1].tags == ("x", "y")


# -- 16: bidi overrides are closed within each text ---------------------------------

RLO, PDF, RLI, PDI = "\u202e", "\u202c", "\u2067", "\u2069"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (f"Karabakh {RLO}sklat", f"Karabakh {RLO}sklat{PDF}"),
        (f"a{PDF}b{PDI}c", "abc"),  # closers of nothing go
        (f"{RLI}x{RLO}y{PDI}z", f"{RLI}x{RLO}y{PDI}z"),  # a PDI closes what its isolate opened
        (f"שלום {RLI}Karabakh{PDI} עולם", f"שלום {RLI}Karabakh{PDI} עולם"),  # balanced: kept
    ],
)
def test_bidi_controls_are_balanced(given: str, expected: str) -> None:
    assert balance_bidi(given) == expected


def test_an_override_in_a_title_ends_with_the_title() -> None:
    raw = RawEntry(identity="b", title=f"Karabakh {RLO}sklat " + "x" * 300, link="https://e.org/b")
    item = normalise_entry(raw, source="wire", origin=None, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert item.title.count(RLO) == item.title.count(PDF) == 1
    assert item.title.index(RLO) < item.title.index(PDF)


# -- 9: a regex that compiles to a large program is refused ------------------------


@pytest.mark.parametrize("pattern", [".{500}Q", "(a|aa){500}b"])
def test_a_regex_with_a_large_program_fails_at_load(tmp_path: Path, pattern: str) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\ntopics:\n  - {{name: k, query: '/{pattern}/'}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "topics[0].query" in str(caught.value)
    assert "program of" in str(caught.value)


def test_ordinary_regexes_still_compile() -> None:
    for pattern in (r"\bIran\b", r"\b(?:Nagorno|Karabakh|Armenia|Azerbaijan)\b", ".{60}Q"):
        compile_pattern(pattern)  # no PatternError
    assert compile_pattern(r"\bKarabakh\b").search("in Karabakh today") == "Karabakh"


# -- 8: a file name or guid cannot forge log lines or send terminal escapes --------

FORGED = "x\n2026-01-01 00:00:00,000 CRITICAL aggregator: forged\x1b]0;owned\x07.txt"


def test_a_seed_file_name_cannot_forge_output_lines(tmp_path: Path) -> None:
    config = seed_folder(tmp_path)
    (tmp_path / "seeds" / FORGED).write_bytes(b"")  # empty: a problem naming the file
    updated = run_cli(config, "update")
    shown = updated.stdout + updated.stderr
    assert "forged" in shown  # the problem is reported...
    assert "\x1b" not in shown and "\x07" not in shown  # ...without terminal escapes
    assert not any(line.startswith("2026-01-01") for line in shown.splitlines())


def test_the_text_log_escapes_control_characters() -> None:
    import io
    import logging

    from aggregator.daemon.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", "text", stream)
    try:
        logging.getLogger("aggregator.test").warning("seeds: %s: empty file", FORGED)
    finally:
        configure_logging("warning", "text")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "\\n2026-01-01" in lines[0] and "\\x1b]0;owned" in lines[0]


# -- 10: Markdown seeds are bounded before rendering ---------------------------------


@pytest.mark.parametrize("unit", ["[a](", "*a "])
def test_a_hostile_markdown_seed_is_cut_before_rendering(unit: str) -> None:
    text = "# Karabakh\n\n" + unit * ((MAX_MARKDOWN_CHARS * 2) // len(unit))
    when = datetime(2025, 1, 1, tzinfo=UTC)
    entry, warnings = parse_markdown_article(
        text, relpath="bomb.md", identity="bomb", mtime=when, now=when
    )
    assert any("cut to" in w for w in warnings)
    assert entry.content is not None and len(entry.content) < 4 * MAX_MARKDOWN_CHARS


# -- 19: an admin token must be more than long --------------------------------------


@pytest.mark.parametrize(
    "token", ["aaaaaaaaaaaaaaaa", "abababababababababababab", "1234123412341234"]
)
def test_a_trivial_admin_token_fails_at_load(tmp_path: Path, token: str) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"data_dir: var\nserver: {{admin_token: '{token}'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "server.admin_token" in str(caught.value)
    assert token not in str(caught.value)


def test_a_generated_admin_token_loads(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nserver: {admin_token: 'c0ffee4b1d2e9a7f'}\n", encoding="utf-8"
    )
    assert load_config(config).server.admin_token == "c0ffee4b1d2e9a7f"
