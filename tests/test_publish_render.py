"""Rendering: Atom validity (schema and RFC prose), RSS, JSON Feed, OPML, HTML, archives."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from lxml import etree

from aggregator.errors import PublishError
from aggregator.model import Item, Story
from aggregator.publish import (
    ATOM_TYPE,
    JSON_FEED_TYPE,
    RSS_TYPE,
    Document,
    Site,
    TopicFeed,
    TopicSummary,
    render_site,
    render_site_pages,
    render_topic,
)
from tests.publish_helpers import T0, make_story, make_topic

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO.parent / "shared" / "schema" / "rfc4287-atom.rng"
A = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
SITE = Site(base_url="https://news.example.org/", title="Test site", hub="https://hub.example.org/")
ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture(scope="module")
def relaxng() -> etree.RelaxNG:
    if not SCHEMA.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SCHEMA} is missing (CI=true)")
        pytest.skip(
            f"{SCHEMA} is missing: the shared Atom schema is not checked out beside the repo"
        )
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def edge_stories() -> list[Story]:
    """Stories that stress the rules: no link, no content, control characters."""
    stories = [make_story(i) for i in range(30)]
    stories.append(make_story(100, link=False, content=""))  # no link, no content: summary used
    stories.append(make_story(101, link=False))
    stories.append(make_story(102, content="", extra=False))
    odd = make_story(103)
    item = odd.item
    stories.append(
        Story(
            id="urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            item=Item(
                source=item.source,
                identity="odd",
                title="Control\x01 chars \u00e9t\u00e9 <b>",
                link=None,
                content_html="<p>x\x0b</p>",
                summary="",
                published=item.published,
                updated=item.updated,
            ),
            published=odd.published,
            updated=odd.updated,
            first_seen=odd.first_seen,
        )
    )
    return stories


def caucasus(stories: list[Story] | None = None, **kwargs: object) -> TopicFeed:
    kwargs.setdefault("max_items", 10)
    return TopicFeed(
        make_topic(**kwargs), tuple(stories if stories is not None else edge_stories())
    )


def atom_docs(docs: dict[str, Document]) -> list[Document]:
    return [d for d in docs.values() if d.content_type == ATOM_TYPE]


def test_every_atom_document_validates_against_rfc4287_schema(relaxng: etree.RelaxNG) -> None:
    docs = render_site(SITE, [caucasus(), TopicFeed(make_topic("empty"), ())])
    atoms = atom_docs(docs)
    assert len(atoms) >= 5  # two current feeds + archives
    for doc in atoms:
        tree = etree.fromstring(doc.body)
        assert relaxng.validate(tree), f"{doc.path}: {relaxng.error_log}"


def test_atom_prose_rules_the_schema_misses() -> None:
    docs = render_site(SITE, [caucasus()])
    for doc in atom_docs(docs):
        root = etree.fromstring(doc.body)
        ids = [root.findtext(A + "id")] + [e.findtext(A + "id") for e in root.iter(A + "entry")]
        for value in ids:
            assert value and urlsplit(value).scheme, f"{doc.path}: id {value!r} is not absolute"
        entry_ids = ids[1:]
        assert len(entry_ids) == len(set(entry_ids)), f"{doc.path}: duplicate entry ids"
        for date in root.iter(A + "updated", A + "published"):
            assert ZONED.match(date.text or ""), f"{doc.path}: date without zone: {date.text!r}"
        feed_author = root.find(A + "author") is not None
        for entry in root.iter(A + "entry"):
            assert feed_author or entry.find(A + "author") is not None
            has_alternate = any(
                link.get("rel", "alternate") == "alternate" for link in entry.findall(A + "link")
            )
            assert has_alternate or entry.find(A + "content") is not None
            assert entry.find(A + "title").get("type") == "text"
        assert root.find(A + "title").get("type") == "text"


def test_entry_fields_and_provenance() -> None:
    story = make_story(3)  # odd: from the wire, provenance wire + seeds, related headlines
    doc = render_topic(SITE, caucasus([story]))["topics/caucasus.atom"]
    root = etree.fromstring(doc.body)
    (entry,) = root.findall(A + "entry")
    assert entry.findtext(A + "id") == story.id
    assert entry.findtext(A + "title") == story.item.title
    assert entry.findtext(A + "updated") == "2024-03-01T11:05:00+00:00"
    assert entry.findtext(A + "published") == "2024-03-01T11:00:00+00:00"
    links = {(link.get("rel"), link.get("href")) for link in entry.findall(A + "link")}
    assert ("alternate", story.item.link) in links
    assert ("via", "https://wire.example.com/") in links
    source = entry.find(A + "source")
    assert source.findtext(A + "id") == "https://wire.example.com/world.rss"
    assert source.findtext(A + "title") == "Example Wire"
    assert [c.get("term") for c in entry.findall(A + "category")] == ["world", "tag3"]
    content = entry.findtext(A + "content")
    assert entry.find(A + "content").get("type") == "html"
    assert content.startswith('<div class="body">')
    # Related headlines are other stories: links beside the entry, never its content.
    for related in story.item.related:
        assert related.title not in content
        if related.link:
            assert ("related", related.link) in links
    dated = etree.fromstring(
        render_topic(SITE, caucasus([make_story(4)]))["topics/caucasus.atom"].body
    )
    assert (
        dated.find(A + "entry")
        .findtext(A + "content")
        .startswith('<p class="dateline">Qom (IP)</p>')
    )


def test_feed_links_and_hub() -> None:
    docs = render_topic(SITE, caucasus([make_story(i) for i in range(25)]))
    root = etree.fromstring(docs["topics/caucasus.atom"].body)
    links = {link.get("rel"): link.get("href") for link in root.findall(A + "link")}
    assert links["self"] == "https://news.example.org/topics/caucasus.atom"
    assert links["alternate"] == "https://news.example.org/topics/caucasus"
    assert links["hub"] == "https://hub.example.org/"
    assert links["prev-archive"] == "https://news.example.org/topics/caucasus/archive/2.atom"
    assert root.findtext(A + "id") == "https://news.example.org/topics/caucasus.atom"
    assert root.findtext(A + "updated") == "2024-03-02T08:05:00+00:00"  # newest entry's updated
    assert root.find(FH + "archive") is None


def test_archives_chain_back_to_every_story() -> None:
    stories = [make_story(i) for i in range(120)]
    docs = render_topic(SITE, caucasus(stories, max_items=50))
    # 70 older stories: archive 1 (oldest 50, full) and archive 2 (20)
    assert sorted(p for p in docs if "/archive/" in p) == [
        "topics/caucasus/archive/1.atom",
        "topics/caucasus/archive/2.atom",
    ]
    seen: list[str] = []
    url = "https://news.example.org/topics/caucasus.atom"
    while url:
        root = etree.fromstring(docs[url.removeprefix(SITE.base_url)].body)
        seen.extend(e.findtext(A + "id") for e in root.iter(A + "entry"))
        links = {link.get("rel"): link.get("href") for link in root.findall(A + "link")}
        if "/archive/" in url:
            assert root.find(FH + "archive") is not None
            assert links["current"] == "https://news.example.org/topics/caucasus.atom"
            assert "hub" not in links
        url = links.get("prev-archive", "")
    assert seen == [s.id for s in sorted(stories, key=lambda s: s.published, reverse=True)]
    first = etree.fromstring(docs["topics/caucasus/archive/1.atom"].body)
    assert {link.get("rel"): link.get("href") for link in first.findall(A + "link")}[
        "next-archive"
    ] == "https://news.example.org/topics/caucasus/archive/2.atom"


def test_rendering_is_deterministic() -> None:
    feeds = [
        caucasus(),
        TopicFeed(make_topic("other", private=True, tokens=("t0k",)), (make_story(1),)),
    ]
    first = render_site(SITE, feeds)
    second = render_site(SITE, list(reversed(feeds)))
    again = render_site(SITE, feeds)
    assert {p: d.body for p, d in first.items()} == {p: d.body for p, d in again.items()}
    # Topic documents do not depend on the other topics or on story order.
    shuffled = render_topic(SITE, caucasus(list(reversed(edge_stories()))))
    for path, doc in shuffled.items():
        assert first[path].body == doc.body
        assert first[path].etag == doc.etag == second[path].etag


def test_adding_a_story_changes_only_current_feeds_and_newest_archive() -> None:
    stories = [make_story(i) for i in range(120)]
    before = render_topic(SITE, caucasus(stories, max_items=50))
    after = render_topic(SITE, caucasus([*stories, make_story(500)], max_items=50))
    changed = {p for p in after if before.get(p) is None or before[p].body != after[p].body}
    assert changed == {
        "topics/caucasus.atom",
        "topics/caucasus.rss",
        "topics/caucasus.json",
        "topics/caucasus",
        "topics/caucasus/archive/2.atom",
    }


def test_full_archive_page_never_changes_when_next_page_starts() -> None:
    # 100 stories, 50 per page: archive 1 is exactly full and links an empty archive 2;
    # the 101st story fills archive 2 without touching archive 1.
    stories = [make_story(i) for i in range(100)]
    before = render_topic(SITE, caucasus(stories, max_items=50))
    after = render_topic(SITE, caucasus([*stories, make_story(500)], max_items=50))
    assert (
        before["topics/caucasus/archive/1.atom"].body
        == after["topics/caucasus/archive/1.atom"].body
    )
    assert b"<entry>" not in before["topics/caucasus/archive/2.atom"].body
    assert after["topics/caucasus/archive/2.atom"].body.count(b"<entry") == 1


def test_last_modified_comes_from_content() -> None:
    docs = render_topic(SITE, caucasus([make_story(1), make_story(2)]))
    for doc in docs.values():
        assert doc.last_modified == T0 + timedelta(hours=2, minutes=5)
    empty = render_topic(SITE, TopicFeed(make_topic(), ()))
    assert {d.last_modified.year for d in empty.values()} == {1970}


def test_json_feed_passes_schema() -> None:
    schema = json.loads((REPO / "tests" / "data" / "jsonfeed-1.1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    docs = render_site(SITE, [caucasus(), TopicFeed(make_topic("empty"), ())])
    feeds = [d for d in docs.values() if d.content_type == JSON_FEED_TYPE]
    assert len(feeds) == 2
    for doc in feeds:
        data = json.loads(doc.body)
        jsonschema.validate(data, schema)
    data = json.loads(docs["topics/caucasus.json"].body)
    assert [i["id"] for i in data["items"]] == [
        e.findtext(A + "id")
        for e in etree.fromstring(docs["topics/caucasus.atom"].body).iter(A + "entry")
    ]
    assert data["hubs"] == [{"type": "WebSub", "url": "https://hub.example.org/"}]


def test_rss_is_well_formed_with_unique_guids() -> None:
    docs = render_site(SITE, [caucasus()])
    rss = [d for d in docs.values() if d.content_type == RSS_TYPE]
    assert len(rss) == 1
    root = etree.fromstring(rss[0].body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("channel/item")
    guids = [i.findtext("guid") for i in items]
    assert len(items) == 10 and len(set(guids)) == len(guids)
    assert all(i.find("guid").get("isPermaLink") == "false" for i in items)
    assert all(
        re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$", i.findtext("pubDate"))
        for i in items
    )
    self_link = root.find("channel/{http://www.w3.org/2005/Atom}link[@rel='self']")
    assert self_link.get("href") == "https://news.example.org/topics/caucasus.rss"


def test_private_topics_absent_from_index_and_opml() -> None:
    secret = TopicFeed(make_topic("secret", private=True, tokens=("abc", "def")), (make_story(1),))
    docs = render_site(SITE, [caucasus(), secret])
    assert not any(p.startswith("topics/secret") for p in docs)
    for token in ("abc", "def"):
        atom = docs[f"private/{token}/topics/secret.atom"].body
        assert f"https://news.example.org/private/{token}/topics/secret.atom".encode() in atom
        assert b'rel="hub"' not in atom
    for path in ("", "topics.opml"):
        assert b"secret" not in docs[path].body
        assert b"abc" not in docs[path].body
    outlines = etree.fromstring(docs["topics.opml"].body).findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == ["https://news.example.org/topics/caucasus.atom"]


@pytest.mark.parametrize("tokens", [(), ("a/b",), ("..",), ("",)])
def test_bad_private_tokens_are_refused(tokens: tuple[str, ...]) -> None:
    feed = TopicFeed(make_topic("secret", private=True, tokens=tokens), ())
    with pytest.raises(PublishError, match="secret"):
        render_topic(SITE, feed)


def test_html_index_escapes_and_lists_topics() -> None:
    evil = TopicFeed(make_topic("evil", title="<script>alert(1)</script>"), (make_story(1),))
    docs = render_site(SITE, [caucasus(), evil])
    index = docs[""].body.decode()
    assert "<script>alert(1)</script>" not in index and "&lt;script&gt;" in index
    assert 'rel="alternate" type="application/atom+xml"' in index
    assert 'href="https://news.example.org/topics.opml"' in index
    assert "34 stories" in index
    page = docs["topics/caucasus"].body.decode()
    assert "Story 29: talks &lt;resume&gt;" in page
    assert 'href="https://news.example.org/topics/caucasus/archive/3.atom"' in page


def test_duplicate_topic_names_are_an_error() -> None:
    with pytest.raises(PublishError, match="caucasus"):
        render_site(SITE, [caucasus(), caucasus()])


def test_site_is_its_pages_plus_each_topic() -> None:
    # The daemon re-renders only dirty topics plus the site pages: together they
    # must be exactly what a full render gives.
    feeds = [caucasus(), TopicFeed(make_topic("empty"), ())]
    pages = render_site_pages(SITE, [TopicSummary.of(feed) for feed in feeds])
    assert set(pages) == {"", "topics.opml"}
    pieced = dict(pages)
    for feed in feeds:
        pieced.update(render_topic(SITE, feed))
    assert pieced == render_site(SITE, feeds)


def test_public_surface_is_pinned() -> None:
    import aggregator.publish as publish
    import aggregator.web as web

    assert set(publish.__all__) == {
        "ATOM_TYPE",
        "HTML_TYPE",
        "INDEX_PATH",
        "JSON_FEED_TYPE",
        "MANIFEST_NAME",
        "OPML_PATH",
        "OPML_TYPE",
        "RSS_TYPE",
        "Document",
        "Site",
        "TopicFeed",
        "TopicSummary",
        "WriteReport",
        "file_name",
        "private_prefix",
        "render_archive_page",
        "render_head",
        "render_site",
        "render_site_pages",
        "render_status_page",
        "render_topic",
        "render_topic_isolated",
        "write_tree",
    }
    assert set(web.__all__) == {
        "ACCEPT_IN_FLIGHT",
        "BODY_TIMEOUT",
        "DEFAULT_MAX_AGE",
        "HEADER_TIMEOUT",
        "MAX_HEADER_BYTES",
        "DocumentStore",
        "PreparedExport",
        "create_app",
        "serve",
    }
