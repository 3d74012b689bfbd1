"""The fast feed path against feedparser: same normalised items, or it declines."""

from __future__ import annotations

import os
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedparser import urls as feedparser_urls
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.model import Item, ParsedDocument, RawEntry
from aggregator.normalise import normalise_entry
from aggregator.parse import fastnames, feeds
from aggregator.parse.fastfeed import Declined
from tests.feedgen_odd import Document, documents

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "corpus" / "feedparser"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
URL = "https://feeds.example/news/feed.xml"
_HEADER_RE = re.compile(rb"^Header:\s*([A-Za-z-]+):\s*(.+?)\s*$", re.M)


def _headers(data: bytes) -> dict[str, str]:
    """The corpus file's own ``Header:`` lines, else an XML content type."""
    found = {k.decode(): v.decode("latin-1") for k, v in _HEADER_RE.findall(data[:2048])}
    return found or {"Content-Type": "application/xml"}


def _normalised(doc: ParsedDocument) -> tuple[object, ...]:
    items: list[Item | str] = []
    for raw in doc.entries:
        try:
            items.append(normalise_entry(raw, source="s", origin=None, now=NOW))
        except ValueError as exc:
            items.append(f"skipped: {exc}")
    return (doc.feed, tuple(items), doc.warnings)


def _differential(data: bytes, headers: dict[str, str], url: str | None) -> bool:
    """Assert both readers agree; True when the fast path took the document."""
    plain = feeds.read_fast(data, url=url, headers=headers)
    if isinstance(plain, Declined):
        return False
    fast = feeds._to_document(plain, "s")
    try:
        reference = feeds.parse_with_feedparser(data, url=url, headers=headers, source="s")
    except ParseError as exc:
        pytest.fail(f"fast path accepted what feedparser refuses: {exc}")
    # Entry by entry, field by field: the parsed entries, then the normalised items.
    assert len(fast.entries) == len(reference.entries)
    for position, (ours, theirs) in enumerate(zip(fast.entries, reference.entries, strict=True)):
        for name in RawEntry.__dataclass_fields__:
            assert getattr(ours, name) == getattr(theirs, name), f"entry {position} {name}"
    assert fast.feed == reference.feed
    assert _normalised(fast) == _normalised(reference)
    return True


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"feedparser corpus missing at {CORPUS}")
        pytest.skip(f"feedparser corpus not present at {CORPUS}")
    return sorted(p for p in CORPUS.rglob("*.xml") if p.is_file())


def test_fast_path_equals_feedparser_over_the_corpus_or_declines() -> None:
    taken = 0
    for path in _corpus_files():
        data = path.read_bytes()
        for url in (None, URL):
            try:
                taken += _differential(data, _headers(data), url)
            except AssertionError as exc:
                raise AssertionError(f"{path.relative_to(CORPUS)} (url={url}): {exc}") from exc
    # The corpus is mostly odd cases on purpose; measured: 2,956 of 4,212 readings taken
    # (1,478 files, with and without a URL). Declined: HTML entities without a DTD and
    # ill-formed files (feedparser's lenient parser), xhtml, xml:base, GeoRSS...
    assert taken >= 2900


@pytest.mark.parametrize("name", ["014_rss2.xml", "015_atom.atom"])
def test_fast_path_on_our_own_feed_files(name: str) -> None:
    # 014 declares ISO-8859-1: decoded by feedparser's rules, then read.
    data = (REPO / "tests" / "data" / "seeds" / name).read_bytes()
    assert _differential(data, {"Content-Type": "application/xml"}, URL)


def _generated(kind: str, seed: int) -> bytes:
    """A feed like the ones we poll: HTML content with links, scripts, tables, entities."""
    rng = random.Random(seed)
    words = [
        "the",
        "court",
        "ruling",
        "budget",
        "Tehran",
        "&amp;",
        "Armenia",
        "'quoted'",
        "été",
        "—",
        "data",
    ]
    entries = []
    for n in range(rng.randint(1, 40)):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
        html = (
            f"<p>{text} <a href='/rel/{n}'>rel</a> <a href='https://x.example/{n}?utm_source=rss'>"
            f"abs</a></p><script>t({n})</script><iframe src='https://v.example/'></iframe>"
            f"<table><tr><td>{n}</td></tr></table><blockquote cite='/c'>{text}</blockquote>"
        )
        escaped = html.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if kind in ("rss", "wordpress"):
            entries.append(
                f"<item><title>{text}</title><link>https://site.example/{n}</link>"
                f"<guid isPermaLink='{rng.choice(['true', 'false'])}'>https://site.example/g/{n}</guid>"
                f"<pubDate>Fri, 27 Nov 2026 {n % 24:02d}:56:00 +0100</pubDate>"
                f"<dc:creator>Au {n}</dc:creator><category>c{n % 3}</category>"
                f"<description>{escaped}</description>"
                + (f"<content:encoded><![CDATA[{html}]]></content:encoded>" if n % 2 else "")
                + "</item>"
            )
        else:
            entries.append(
                f"<entry><title type='html'>&lt;b&gt;{n}&lt;/b&gt; {text}</title>"
                f"<link rel='alternate' href='/post/{n}'/><id>tag:site.example,2026:{n}</id>"
                f"<updated>2026-11-27T{n % 24:02d}:49:00Z</updated><author><name>A {n}</name>"
                f"</author><category term='t{n % 4}'/><summary type='html'>{escaped}</summary>"
                + (f"<content type='text'>{text}</content>" if n % 3 else "")
                + "</entry>"
            )
    if kind == "wordpress":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>'
            "<image><url>https://site.example/i.png</url><title>Image title</title>"
            "<link>https://site.example/image-link</link></image>"
            "<title>Blog</title><atom:link href='https://site.example/feed/' rel='self' "
            "type='application/rss+xml'/><link>https://site.example/</link><description>d"
            "</description><language>de-DE</language><sy:updatePeriod>hourly</sy:updatePeriod>"
            "<sy:updateFrequency>1</sy:updateFrequency>"
            + "".join(
                e.replace(
                    "</item>",
                    "<wfw:commentRss>https://site.example/c/feed/</wfw:commentRss>"
                    "<slash:comments>3</slash:comments><enclosure url='https://site.example/a.mp3' "
                    "length='1' type='audio/mpeg'/></item>",
                )
                for e in entries
            )
            + "</channel></rss>"
        ).encode()
    if kind == "rss":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Site &amp; co</title>'
            "<link>https://site.example/</link><language>en</language><ttl>30</ttl>"
            f"{''.join(entries)}</channel></rss>"
        ).encode()
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f"xml:lang='{['en', 'pt_BR', ''][seed % 3]}'>"
        "<title>Site</title><link href='https://site.example/'/><id>urn:feed:1</id>"
        f"<link rel='hub' href='https://hub.example/'/>{''.join(entries)}</feed>"
    ).encode()


@pytest.mark.parametrize("kind", ["rss", "atom", "wordpress"])
def test_fast_path_takes_generated_feeds_and_agrees(kind: str) -> None:
    for seed in range(15):
        data = _generated(kind, seed)
        assert _differential(data, {"Content-Type": "application/xml"}, URL), seed


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(["", URL, "http://a.example/b/c?d#e", "HTTPS://A.example/"]),
    uri=st.one_of(
        st.sampled_from(
            [
                "tag:x,2026:1",
                "HTTPS://x.example/",
                "http:///x",
                "https:x",
                "//h.example/p",
                "../up",
                "?q",
                "#f",
                " tag:x",
                "ht\ttp://x",
                "urn:uuid:1",
                "mailto:a@b",
                "",
                "https://x.example/a?b=1#c",
                "https://x.example/a?#c",
                "https://x.example/a?",
                "https://x.example/a#",
                "https://x.example/a;p?q",
                "https://x.example:8080/a/../b",
                "http://x.example/ä?q=ü#ß",
                "https://[::1]/x",
                "https://x.example/a\u3000b",
            ]
        ),
        st.text(alphabet="htpsag:/.?#x \t\n-+", max_size=16),
        st.text(alphabet="htps:/.?#;=&x1 \t-[]\u00e4", max_size=24).map(lambda t: "https://" + t),
    ),
)
def test_uri_resolution_is_feedparsers(base: str, uri: str) -> None:
    assert fastnames._resolve(base, uri) == feedparser_urls._urljoin(base, uri)


_XML = '<?xml version="1.0" encoding="utf-8"?>\n'
_ATOM_HEAD = (
    _XML + '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>'
    '<link href="https://site.example/"/>'
)


def _rss_doc(items: str, namespaces: str = "") -> bytes:
    return (
        f'{_XML}<rss version="2.0"{namespaces}><channel><title>t</title>'
        f"<link>https://site.example/</link>{items}</channel></rss>"
    ).encode()


def _atom_doc(entries: str) -> bytes:
    return f"{_ATOM_HEAD}{entries}</feed>".encode()


def _items(data: bytes, *, fast: bool) -> list[Item]:
    doc = (
        feeds.parse_xml_feed(data, url=URL, headers={"Content-Type": "application/xml"}, source="s")
        if fast
        else feeds.parse_with_feedparser(
            data, url=URL, headers={"Content-Type": "application/xml"}, source="s"
        )
    )
    items = _normalised(doc)[1]
    assert all(isinstance(item, Item) for item in items), items
    return [item for item in items if isinstance(item, Item)]


# Minimal documents for each difference found between the two paths on outside
# corpora; each check holds on both paths.
_WILD_CASES = {
    "empty_rss_guids": (
        _rss_doc(
            "".join(
                f"<item><title>{n}</title><link>https://site.example/{n}</link><guid></guid></item>"
                for n in "abc"
            )
        ),
        lambda items: [i.identity for i in items] == [f"https://site.example/{n}" for n in "abc"],
    ),
    "blank_atom_ids": (
        _atom_doc(
            "".join(
                f"<entry><title>{n}</title><link href='https://site.example/{n}'/><id>{s}</id>"
                "</entry>"
                for n, s in (("a", ""), ("b", " "), ("c", "\n"))
            )
        ),
        lambda items: [i.identity for i in items] == [f"https://site.example/{n}" for n in "abc"],
    ),
    "padded_atom_date": (
        _atom_doc(
            "<entry><title>a</title><id>urn:a</id>"
            "<updated>\n 2003-12-13T18:30:02Z\n</updated></entry>"
        ),
        lambda items: items[0].updated == datetime(2003, 12, 13, 18, 30, 2, tzinfo=UTC),
    ),
    "upper_case_rel": (
        _atom_doc(
            "<entry><title>a</title><id>urn:a</id>"
            "<link rel='ALTERNATE' href='https://site.example/a'/>"
            "<link href='https://site.example/b' type='text/plain'/></entry>"
        ),
        lambda items: items[0].link == "https://site.example/a",
    ),
    "creator_with_email": (
        _rss_doc(
            "<item><title>a</title><guid>urn:a</guid>"
            "<dc:creator>mail@example.com (Jane Doe)</dc:creator></item>",
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"',
        ),
        lambda items: items[0].authors == ("Jane Doe",),
    ),
    "category_label_only": (
        _atom_doc("<entry><title>a</title><id>urn:a</id><category label='Politics'/></entry>"),
        lambda items: items[0].tags == ("Politics",),
    ),
    "empty_id_no_title": (
        _atom_doc("<entry><id></id><summary>Some text here.</summary></entry>"),
        lambda items: items[0].title == "Some text here." and items[0].link is None,
    ),
    "content_sanitised_to_nothing": (
        _atom_doc(
            "<entry><title>a</title><id>urn:a</id>"
            "<content type='html'>&lt;script&gt;x()&lt;/script&gt;</content>"
            "<summary>A usable summary</summary></entry>"
        ),
        lambda items: items[0].content_html == "<p>A usable summary</p>",
    ),
    "text_title_with_markup": (
        _atom_doc(
            "<entry><title type='text'>Use &lt;b&gt;bold&lt;/b&gt;</title><id>urn:a</id></entry>"
        ),
        lambda items: items[0].title == "Use <b>bold</b>",
    ),
    "mathml_and_svg_text": (
        _atom_doc(
            "<entry><title>a</title><id>urn:a</id><content type='html'>&lt;p&gt;Let &lt;math&gt;"
            "&lt;mi&gt;x&lt;/mi&gt;&lt;mo&gt;=&lt;/mo&gt;&lt;mn&gt;2&lt;/mn&gt;&lt;/math&gt;"
            "&lt;/p&gt;&lt;svg&gt;&lt;desc&gt;A chart&lt;/desc&gt;&lt;/svg&gt;</content></entry>"
        ),
        lambda items: "x=2" in items[0].content_html and "A chart" in items[0].content_html,
    ),
}


@pytest.mark.parametrize("case", sorted(_WILD_CASES))
def test_documents_from_the_wild_read_as_feedparser_reads_them(case: str) -> None:
    data, check = _WILD_CASES[case]
    assert _differential(data, {"Content-Type": "application/xml"}, URL)
    for fast in (True, False):
        items = _items(data, fast=fast)
        assert check(items), (fast, items)


@settings(max_examples=300, deadline=None)
@given(doc=documents(), url=st.sampled_from([URL, None]))
def test_odd_documents_read_alike_on_both_paths(doc: Document, url: str | None) -> None:
    """Generated odd-but-real documents: whenever the fast path takes one, feedparser agrees."""
    _differential(doc.data, doc.headers, url)


def test_doctype_entities_are_read_only_when_feedparser_keeps_them(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-xxe", encoding="utf-8")
    external = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        '<rss version="2.0"><channel><title>t &x;</title>'
        "<item><title>a &x;</title><guid>g</guid></item></channel></rss>"
    ).encode()
    nested = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "xx"><!ENTITY b "&a;&a;">]>'
        b'<rss version="2.0"><channel><item><title>&b;</title><guid>g</guid></item></channel></rss>'
    )
    for data in (external, nested):
        assert isinstance(feeds.read_fast(data, url=URL, headers=None), Declined)
        doc = feeds.parse_xml_feed(data, url=URL, headers=None, source="s")
        assert all("secret" not in (e.title or "") for e in doc.entries)
    # The entities feedparser keeps (a character, plain text) are read on the fast path too.
    kept = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY copy "&#169;">\n'
        b'<!ENTITY me "Jane">\n]>\n'
        b'<rss version="2.0"><channel><item><title>&copy; &me;</title><guid>g</guid></item>'
        b"</channel></rss>"
    )
    assert _differential(kept, {"Content-Type": "application/xml"}, URL)
    (entry,) = feeds.parse_xml_feed(kept, url=URL, headers=None, source="s").entries
    assert entry.title == "© Jane"
