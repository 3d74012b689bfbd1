"""The server against real clients: httpx, feedparser, reader, newsboat, headless Chromium."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from lxml import html as lxml_html

from aggregator.model import TopicSpec
from aggregator.publish import Document, Site, TopicFeed, render_site
from aggregator.web import DocumentStore, create_app
from tests.cdp import HEADLESS_FLAGS
from tests.publish_helpers import free_socket, make_story, make_topic, run_server

N_STORIES = 8


@dataclass
class Served:
    url: str
    store: DocumentStore
    site: Site
    topics: dict[str, TopicSpec]
    docs: dict[str, Document]


def build(site: Site, topics: dict[str, TopicSpec], n: int = N_STORIES) -> dict[str, Document]:
    stories = tuple(make_story(i) for i in range(n))
    return render_site(site, [TopicFeed(t, stories) for t in topics.values()])


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    sock = free_socket()
    site = Site(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/", title="Test site")
    topics = {
        "caucasus": make_topic(cache_max_age=timedelta(minutes=7)),
        "world": make_topic("world", max_items=3),
        "secret": make_topic("secret", private=True, tokens=("s3cret-token", "other-token")),
    }
    docs = build(site, topics)
    store = DocumentStore(docs, topics=topics)
    app = create_app(store, health=lambda: {"status": "ok", "topics": 3})
    with run_server(app, sock) as running:
        yield Served(running.base_url, store, site, topics, docs)


def get(served: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(served.url + path, **kwargs)  # type: ignore[arg-type]


CONTENT_TYPES = {
    "topics/caucasus.atom": "application/atom+xml; charset=utf-8",
    "topics/caucasus.rss": "application/rss+xml; charset=utf-8",
    "topics/caucasus.json": "application/feed+json; charset=utf-8",
    "topics/caucasus": "text/html; charset=utf-8",
    "": "text/html; charset=utf-8",
    "topics.opml": "text/x-opml; charset=utf-8",
    "topics/world/archive/1.atom": "application/atom+xml; charset=utf-8",
}


@pytest.mark.parametrize("path", sorted(CONTENT_TYPES))
def test_exact_content_types_and_validators(served: Served, path: str) -> None:
    r = get(served, path, headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPES[path]
    assert r.content == served.docs[path].body
    assert r.headers["etag"] == served.docs[path].etag
    assert r.headers["last-modified"]


def test_conditional_get_with_etag_gets_empty_304(served: Served) -> None:
    first = get(served, "topics/caucasus.atom")
    assert first.headers["content-encoding"] == "gzip"
    second = get(served, "topics/caucasus.atom", headers={"if-none-match": first.headers["etag"]})
    assert second.status_code == 304 and second.content == b""
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == "max-age=420"
    listed = get(
        served, "topics/caucasus.atom", headers={"if-none-match": f'"x", W/{first.headers["etag"]}'}
    )
    assert listed.status_code == 304
    stale = get(served, "topics/caucasus.atom", headers={"if-none-match": '"nope"'})
    assert stale.status_code == 200


def test_if_modified_since(served: Served) -> None:
    first = get(served, "topics/caucasus.rss")
    lm = first.headers["last-modified"]
    assert get(served, "topics/caucasus.rss", headers={"if-modified-since": lm}).status_code == 304
    other = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert (
        get(served, "topics/caucasus.rss", headers={"if-modified-since": other}).status_code == 200
    )
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = {"if-modified-since": lm, "if-none-match": '"nope"'}
    assert get(served, "topics/caucasus.rss", headers=both).status_code == 200


def test_gzip_variant(served: Served) -> None:
    plain = get(served, "topics/caucasus.atom", headers={"accept-encoding": "identity"})
    zipped = httpx.get(
        served.url + "topics/caucasus.atom",
        headers={"accept-encoding": "gzip"},
        follow_redirects=False,
    )
    assert zipped.headers["vary"] == "accept-encoding" == plain.headers["vary"]
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert zipped.content == plain.content  # httpx decodes
    with (
        httpx.Client() as client,
        client.stream(
            "GET", served.url + "topics/caucasus.atom", headers={"accept-encoding": "gzip"}
        ) as raw,
    ):
        body = b"".join(raw.iter_raw())
    assert gzip.decompress(body) == served.docs["topics/caucasus.atom"].body
    refused = get(served, "topics/caucasus.atom", headers={"accept-encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers


def test_head_and_methods(served: Served) -> None:
    r = httpx.head(served.url + "topics/caucasus.json", headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == len(served.docs["topics/caucasus.json"].body)
    assert httpx.post(served.url + "topics/caucasus.json").status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "topics/nope.atom",
        "topics/nope",
        "nope",
        "topics/caucasus/archive/99.atom",
        "private/x/topics/caucasus.atom",
    ],
)
def test_unknown_paths_are_404(served: Served, path: str) -> None:
    assert get(served, path).status_code == 404


def test_private_topic_by_path_and_basic_auth(served: Served) -> None:
    for path in ("topics/secret.atom", "topics/secret", "topics/secret.json"):
        assert get(served, path).status_code == 404
        assert get(served, path, auth=("anyone", "wrong")).status_code == 404
        assert get(served, path, auth=("anyone", "s3cret-token")).status_code == 200
    assert get(served, "private/wrong/topics/secret.atom").status_code == 404
    ok = get(served, "private/other-token/topics/secret.atom")
    assert ok.status_code == 200 and ok.headers["cache-control"] == "private, max-age=300"
    assert b"secret" not in get(served, "").content
    assert b"secret" not in get(served, "topics.opml").content


def test_healthz(served: Served) -> None:
    r = get(served, "healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "topics": 3}


def test_regenerating_unchanged_topic_keeps_etag(served: Served) -> None:
    etag = get(served, "topics/caucasus.atom").headers["etag"]
    served.store.replace(build(served.site, served.topics))
    again = get(served, "topics/caucasus.atom", headers={"if-none-match": etag})
    assert again.status_code == 304
    changed = build(served.site, served.topics, N_STORIES + 1)
    served.store.replace(changed)
    try:
        assert (
            get(served, "topics/caucasus.atom", headers={"if-none-match": etag}).status_code == 200
        )
    finally:
        served.store.replace(served.docs)


# --- real feed readers ---------------------------------------------------------


@pytest.mark.parametrize("ext", ["atom", "rss"])
def test_feedparser_reads_feeds(served: Served, ext: str) -> None:
    # feedparser 6.0 does not read JSON Feed at all; reader covers that format below.
    parsed = feedparser.parse(served.url + f"topics/caucasus.{ext}")
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == N_STORIES
    ids = {make_story(i).id for i in range(N_STORIES)}
    assert {e.id for e in parsed.entries} == ids
    for entry in parsed.entries:
        assert entry.title.startswith("Story ")
        assert entry.link.startswith("https://wire.example.com/story/")
        assert entry.published_parsed


def test_reader_reads_all_three_formats(served: Served, tmp_path: Path) -> None:
    reader_mod = pytest.importorskip("reader")
    reader = reader_mod.make_reader(str(tmp_path / "db.sqlite"))
    try:
        urls = [served.url + f"topics/caucasus.{ext}" for ext in ("atom", "rss", "json")]
        for url in urls:
            reader.add_feed(url)
        for _ in range(2):  # re-polling must not duplicate anything
            reader.update_feeds(scheduled=False)
        for url in urls:
            feed = reader.get_feed(url)
            assert feed.last_exception is None, (url, feed.last_exception)
            entries = list(reader.get_entries(feed=url))
            assert len(entries) == N_STORIES, url
            assert {e.id for e in entries} == {make_story(i).id for i in range(N_STORIES)}
            for entry in entries:
                assert entry.title and entry.title.startswith("Story ")
                assert entry.link and entry.link.startswith("https://wire.example.com/story/")
                assert entry.published or entry.updated
    finally:
        reader.close()


def _require(binary: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists() else None
    )
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is not installed (CI=true)")
        pytest.skip(f"{binary} is not installed (Debian package '{binary}')")
    return path


def test_newsboat_reloads_twice_without_duplicates(served: Served, tmp_path: Path) -> None:
    newsboat = _require("newsboat")
    urls = tmp_path / "urls"
    urls.write_text(served.url + "topics/caucasus.atom\n")
    config = tmp_path / "config"
    config.write_text("")
    cache = tmp_path / "cache.db"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
    }
    for _ in range(2):
        run = subprocess.run(
            [newsboat, "-u", str(urls), "-c", str(cache), "-C", str(config), "-x", "reload"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT guid, title, url FROM rss_item").fetchall()
    guids = [r[0] for r in rows]
    assert len(guids) == N_STORIES == len(set(guids))  # a failed fetch would leave 0 rows
    assert set(guids) == {make_story(i).id for i in range(N_STORIES)}
    assert all(r[1].startswith("Story ") and r[2].startswith("https://") for r in rows)


def test_index_in_headless_chromium_with_reachable_subscribe_links(
    served: Served, tmp_path: Path
) -> None:
    chromium = _require("chromium")
    run = subprocess.run(
        [
            chromium,
            *HEADLESS_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            served.url,
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = lxml_html.fromstring(run.stdout)
    assert dom.findtext(".//h1") == "Test site"
    hrefs = dom.xpath("//a[contains(@class,'feed') or contains(@class,'opml')]/@href")
    hrefs += dom.xpath("//link[@rel='alternate']/@href")
    assert len(hrefs) >= 2 * 3 * 2 + 1  # two public topics x three formats, twice, + OPML
    with httpx.Client() as client:
        for href in set(hrefs):
            r = client.get(href)
            assert r.status_code == 200, href
            assert r.headers["content-type"].split(";")[0] in {
                "application/atom+xml",
                "application/rss+xml",
                "application/feed+json",
                "text/x-opml",
            }
    topic_links = dom.xpath("//li[@class='topic']/h2/a/@href")
    assert sorted(topic_links) == [served.url + "topics/caucasus", served.url + "topics/world"]
