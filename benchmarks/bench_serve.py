"""Serving and rendering benchmark: aggregator's server vs nginx on the same Atom feed.

Run: ``/work/venv/bin/python benchmarks/bench_serve.py [--duration 5] [--nginx-workers 1]``

* Renders a ~85 KB, 50-entry topic feed and writes it to a temp folder.
* Starts our server as ``aggregator serve`` runs it (``web.serve``: uvicorn +
  uvloop + httptools with the request-head guard, 1 worker, in a
  subprocess), the same app on uvicorn's own protocol (what the guard costs),
  a minimal ASGI app on uvicorn (the ASGI floor), and nginx (own temp config,
  loopback port, no root) serving that file.
* Runs ``wrk`` (100 connections) for 200s (no validator) and 304s
  (``If-None-Match`` with each server's own ETag) and prints requests/s and
  the ratio to nginx.
* Times rendering a 10,000-entry topic feed (one Atom document) and a whole
  10,000-story topic (current feeds + 200 archive pages).

Binds 127.0.0.1 only; stops everything it started; bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.model import Item, Origin, Story, TopicSpec
from aggregator.publish import Document, Site, TopicFeed, render_topic
from aggregator.publish._base import TopicUrls, paginate
from aggregator.publish.atom import render_atom

SITE = Site(base_url="http://127.0.0.1/", title="Benchmark")
ORIGIN = Origin(
    "wire", "Example Wire", "https://wire.example.com/", "https://wire.example.com/feed"
)
PARAGRAPH = (
    "Negotiators met again on Tuesday to discuss the corridor, the border commission "
    "and the release of detainees; both sides said the talks were constructive. "
)


def stories(n: int, paragraphs: int = 5) -> tuple[Story, ...]:
    from datetime import UTC, datetime

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        when = t0 + timedelta(minutes=7 * i)
        body = "".join(f"<p>{PARAGRAPH}({i}.{p})</p>" for p in range(paragraphs))
        item = Item(
            source="wire",
            identity=f"e{i}",
            title=f"Talks resume in round {i}",
            link=f"https://wire.example.com/story/{i}",
            content_html=body,
            summary=PARAGRAPH,
            published=when,
            updated=when,
            authors=("Desk",),
            tags=("world",),
            origin=ORIGIN,
        )
        out.append(Story(f"tag:wire.example.com,2024:{i}", item, when, when, when, (ORIGIN,)))
    return tuple(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def child(path: Path, port: int, guard: bool = True) -> None:
    """Subprocess mode: serve one document from memory, as ``aggregator serve`` does.

    ``guard=False`` runs the same app on uvicorn's own httptools protocol (the
    "aggregator-noguard" row), to show what the request-head guard costs.
    """
    from datetime import UTC, datetime

    from aggregator.publish._base import ATOM_TYPE, make_document
    from aggregator.web import DocumentStore, create_app, serve

    doc = make_document(
        "topics/bench.atom", path.read_bytes(), ATOM_TYPE, datetime(2024, 1, 1, tzinfo=UTC)
    )
    app = create_app(DocumentStore({doc.path: doc}))
    if guard:
        serve(app, host="127.0.0.1", port=port).run()
        return
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        ws="none",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )


def floor_child(path: Path, port: int) -> None:
    """Subprocess mode: the smallest ASGI app answering the same bytes (uvicorn's ceiling)."""
    import hashlib

    import uvicorn

    body = path.read_bytes()
    etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
    h200 = [
        (b"content-type", b"application/atom+xml; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"etag", etag),
    ]
    h304 = [(b"etag", etag)]

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == etag:
                await send({"type": "http.response.start", "status": 304, "headers": h304})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": h200})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        access_log=False,
        log_level="warning",
        server_header=False,
        lifespan="off",
    )


@contextlib.contextmanager
def started(cmd: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_conf(root: Path, site: Path, port: int, workers: str) -> Path:
    conf = root / "nginx.conf"
    temp = root / "nginx-temp"
    temp.mkdir()
    conf.write_text(f"""
daemon off;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    types {{ application/atom+xml atom; }}
    charset utf-8; charset_types application/atom+xml;
    sendfile on; tcp_nopush on; keepalive_requests 1000000;
    server {{ listen 127.0.0.1:{port}; root {site}; etag on; }}
}}
""")
    return conf


def wrk(url: str, duration: int, etag: str | None) -> float:
    cmd = ["wrk", "-t2", "-c100", f"-d{duration}s", url]
    if etag:
        cmd[1:1] = ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed against {url}:\n{out}")
    return float(match.group(1))


def probe(port: int) -> tuple[int, str, int]:
    """(status, etag, bytes) of one plain GET, then checks the 304."""
    import httpx

    url = f"http://127.0.0.1:{port}/topics/bench.atom"
    r = httpx.get(url, headers={"accept-encoding": "identity"})
    again = httpx.get(
        url, headers={"accept-encoding": "identity", "if-none-match": r.headers["etag"]}
    )
    assert again.status_code == 304, again.status_code
    return r.status_code, r.headers["etag"], len(r.content)


def time_render() -> None:
    many = stories(10_000, paragraphs=2)
    one = TopicSpec("big", "Big", "x", max_items=10_000)
    urls = TopicUrls(SITE.base_url, "big", "")
    page = paginate(many, one.max_items)[0]
    t = time.perf_counter()
    doc = render_atom(SITE, one.title, "", urls, page)
    single = time.perf_counter() - t
    print(
        f"render one Atom document, 10,000 entries: {single:.2f} s ({len(doc.body) / 1e6:.1f} MB)"
    )
    paged = TopicSpec("big", "Big", "x", max_items=50)
    t = time.perf_counter()
    docs = render_topic(SITE, TopicFeed(paged, many))
    whole = time.perf_counter() - t
    print(
        f"render whole topic, 10,000 stories, max_items=50 ({len(docs)} documents): {whole:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--nginx-workers", default="1", help="nginx worker_processes: 1 (like ours) or auto"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best is kept")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", nargs=2, metavar=("FILE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--noguard-child", nargs=2, metavar=("FILE", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]))
        return
    if args.noguard_child:
        child(Path(args.noguard_child[0]), int(args.noguard_child[1]), guard=False)
        return
    if args.floor_child:
        floor_child(Path(args.floor_child[0]), int(args.floor_child[1]))
        return
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is not installed")
    feed = TopicFeed(TopicSpec("bench", "Bench", "x", max_items=50), stories(50))
    doc: Document = render_topic(SITE, feed)["topics/bench.atom"]
    entries = doc.body.count(b"<entry>")
    print(
        f"feed: {len(doc.body) / 1000:.1f} KB, {entries} entries; wrk -t2 -c100 -d{args.duration}s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        # nginx started by root runs its workers as "nobody": let them read the file.
        root.chmod(0o755)
        site = root / "site"
        (site / "topics").mkdir(parents=True)
        file = site / "topics" / "bench.atom"
        file.write_bytes(doc.body)
        ours_port, nginx_port = free_port(), free_port()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = nginx_conf(root, site, nginx_port, args.nginx_workers)
        floor_port, noguard_port = free_port(), free_port()
        servers = {
            "nginx": (
                [nginx, "-p", str(root), "-e", str(root / "nginx-error.log"), "-c", str(conf)],
                nginx_port,
            ),
            "aggregator": (
                [sys.executable, __file__, "--child", str(file), str(ours_port)],
                ours_port,
            ),
            "aggregator-noguard": (
                [sys.executable, __file__, "--noguard-child", str(file), str(noguard_port)],
                noguard_port,
            ),
            "asgi-floor": (
                [sys.executable, __file__, "--floor-child", str(file), str(floor_port)],
                floor_port,
            ),
        }
        results: dict[str, dict[str, float]] = {name: {"200": 0.0, "304": 0.0} for name in servers}
        with contextlib.ExitStack() as stack:
            etags = {}
            for name, (cmd, port) in servers.items():
                stack.enter_context(started(cmd, port))
                status, etags[name], size = probe(port)
                assert status == 200 and size == len(doc.body), (name, status, size)
            # Alternate the servers round by round and keep each one's best run, so a
            # burst of other load on the machine does not land on one server only.
            for _ in range(args.rounds):
                for kind in ("200", "304"):
                    for name, (_cmd, port) in servers.items():
                        url = f"http://127.0.0.1:{port}/topics/bench.atom"
                        rate = wrk(url, args.duration, etags[name] if kind == "304" else None)
                        results[name][kind] = max(results[name][kind], rate)
    print(f"{'server':<16}{'200/s':>12}{'304/s':>12}")
    for name, r in results.items():
        print(f"{name:<16}{r['200']:>12,.0f}{r['304']:>12,.0f}")
    ours, ref = results["aggregator"], results["nginx"]
    r200, r304 = ours["200"] / ref["200"], ours["304"] / ref["304"]
    print(f"{'ratio':<16}{r200:>12.2f}{r304:>12.2f}  aggregator / nginx (target >= 0.50)")
    plain = results["aggregator-noguard"]
    g200, g304 = ours["200"] / plain["200"], ours["304"] / plain["304"]
    print(f"{'vs no guard':<16}{g200:>12.2f}{g304:>12.2f}  aggregator / same app without the guard")
    floor = results["asgi-floor"]
    f200, f304 = ours["200"] / floor["200"], ours["304"] / floor["304"]
    print(f"{'vs floor':<16}{f200:>12.2f}{f304:>12.2f}  aggregator / minimal ASGI app on uvicorn")
    time_render()


if __name__ == "__main__":
    main()
