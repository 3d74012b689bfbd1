"""Hypothesis strategies for odd-but-real feed documents (RSS 2.0, RSS 1.0, Atom 1.0).

What real feeds do that a tidy generator never would: empty and
whitespace-padded elements, repeated elements, mixed-case attribute names and
values, relative links, entities, character references (C1 ones included),
CDATA, escaped and literal markup in text constructs, ``xml:lang`` anywhere,
Dublin Core, ``content:encoded``, Media RSS and iTunes elements beside the
core ones, a namespace of nobody's, and every common encoding, declared in the
XML declaration, a BOM or the HTTP charset, agreeing or not.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from hypothesis import strategies as st

NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "media": "http://search.yahoo.com/mrss/",
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "atom": "http://www.w3.org/2005/Atom",
    "x": "http://nobody.example/ns#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}

#: Raw element text, as it appears between the tags (already XML-escaped where needed).
TEXTS = [
    "",
    " ",
    "\n  padded words \n",
    "plain words",
    "Tom &amp; Jerry",
    "Tom &amp;amp; Jerry",
    "&lt;b&gt;bold&lt;/b&gt; and &lt;i&gt;more&lt;/i&gt;",
    "&lt;p&gt;para &lt;a href=&quot;/rel&quot;&gt;link&lt;/a&gt;&lt;/p&gt;",
    "<![CDATA[<p>cdata <b>html</b> &amp; more</p>]]>",
    "<![CDATA[ ]]>",
    "&#233;t&#xE9; &#x2014; &#8220;q&#8221;",
    "&#146;curly&#147; &#150; dash",
    "Ünïcödé — “quotes” café",
    "Москва: новости дня",
    "東京のニュース",
    "قره‌باغ کوهستانی",
    "a &lt; b &gt; c",
    "x\ty\r\nz",
    "mail@example.com (Jane Doe)",
    "Jane Doe &lt;jane@example.com&gt;",
    "jane@example.com",
    "https://site.example/p?a=1&amp;b=2",
    "/relative/path/",
    "tag:site.example,2026:1",
    "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    "Sat, 13 Dec 2003 18:30:02 GMT",
    " 2003-12-13T18:30:02Z ",
    "\n2026-11-27T10:00:00+01:00\n",
    "2026-11-27",
    "not a date",
    "Ã©tÃ© mojibake",
    "a,b, c ,,d",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&copy; 2026",
    "&nbsp;non-breaking",
    "literal <b>bold</b> markup",
    '<div xmlns="http://www.w3.org/1999/xhtml"><p>xhtml <i>inline</i></p></div>',
]
_TEXT = st.sampled_from(TEXTS)
_URL = st.sampled_from(
    [
        "https://site.example/a",
        "/rel/b",
        "c/d",
        "HTTPS://SITE.example/E",
        "",
        "  https://s.example/f  ",
    ]
)
_LANG = st.sampled_from(["en", "fr_CA", "", "ru", "de-DE"])


def _case(name: str, draw: st.DrawFn) -> str:
    return draw(st.sampled_from([name, name.upper(), name.lower(), name.capitalize()]))


def _attrs(draw: st.DrawFn, pairs: dict[str, str]) -> str:
    out = []
    for name, value in pairs.items():
        out.append(f' {_case(name, draw)}="{value}"')
    if draw(st.integers(0, 5)) == 0:
        out.append(f' {draw(st.sampled_from(["xml:lang", "lang", "LANG"]))}="{draw(_LANG)}"')
    return "".join(out)


@st.composite
def _element(draw: st.DrawFn, kind: str) -> str:
    """One child of an RSS item or an Atom entry."""
    rss_names = [
        "title", "link", "description", "guid", "pubDate", "dc:creator", "dc:date",
        "dc:subject", "dc:title", "dc:description", "author", "category", "content:encoded",
        "media:title", "media:description", "media:content", "media:thumbnail", "media:group",
        "itunes:author", "itunes:summary", "itunes:subtitle", "itunes:keywords",
        "itunes:category", "itunes:image", "itunes:duration", "enclosure", "comments",
        "atom:link", "x:extra", "dcterms:modified", "media:category", "source",
        "dc:contributor",
    ]  # fmt: skip
    atom_names = [
        "title", "link", "id", "updated", "published", "author", "category", "summary",
        "content", "dc:creator", "dc:subject", "media:group", "media:thumbnail", "x:extra",
        "itunes:summary", "source", "contributor",
    ]  # fmt: skip
    if kind == "rdf":
        rss_names.remove("atom:link")  # RDF feeds that declare Atom are declined: not generated
    name = draw(st.sampled_from(rss_names if not kind.startswith("atom") else atom_names))
    text = draw(_TEXT)
    if name in ("link",) and kind.startswith("atom"):
        pairs = {"href": draw(_URL)}
        if draw(st.booleans()):
            pairs["rel"] = draw(
                st.sampled_from(["alternate", "ALTERNATE", "self", "enclosure", "related"])
            )
        if draw(st.booleans()):
            pairs["type"] = draw(st.sampled_from(["text/html", "TEXT/HTML", "text/plain", "html"]))
        return f"<link{_attrs(draw, pairs)}/>"
    if name == "link":
        return f"<link>{draw(st.one_of(_URL, _TEXT))}</link>"
    if name == "atom:link":
        rel = draw(st.sampled_from(["alternate", "self", "hub", "ALTERNATE"]))
        return f"<atom:link{_attrs(draw, {'href': draw(_URL), 'rel': rel})}/>"
    if name == "guid":
        pairs = {}
        if draw(st.booleans()):
            pairs["isPermaLink"] = draw(st.sampled_from(["true", "false", "True"]))
        return f"<guid{_attrs(draw, pairs)}>{draw(st.one_of(_URL, _TEXT))}</guid>"
    if name in ("title", "summary", "content") and kind.startswith("atom"):
        pairs = {}
        if draw(st.booleans()):
            pairs["type"] = draw(
                st.sampled_from(["text", "html", "HTML", "text/html", "text/plain"])
            )
        if draw(st.integers(0, 3)) == 0:
            pairs["mode"] = draw(st.sampled_from(["escaped", "xml", "base64"]))
        return f"<{name}{_attrs(draw, pairs)}>{text}</{name}>"
    if name == "author" and kind.startswith("atom"):
        parts = draw(
            st.lists(
                st.sampled_from(
                    ["<name>Jane Doe</name>", "<name> </name>", "<email>j@example.com</email>",
                     "<uri>/about</uri>", "<name>mail@example.com (Joe)</name>"]
                ),
                max_size=3,
            )
        )  # fmt: skip
        return f"<author{_attrs(draw, {})}>{''.join(parts)}</author>"
    if name == "category" and kind.startswith("atom"):
        pairs = {}
        for attr in ("term", "label", "scheme"):
            if draw(st.booleans()):
                pairs[attr] = draw(st.sampled_from(["Politics", "", "World news", "a&amp;b"]))
        return f"<category{_attrs(draw, pairs)}/>"
    if name == "category":
        pairs = {"domain": "https://tax.example/"} if draw(st.booleans()) else {}
        return f"<category{_attrs(draw, pairs)}>{text}</category>"
    if name in ("media:content", "media:thumbnail", "enclosure"):
        pairs = {"url": draw(_URL), "type": "image/jpeg"}
        inner = ""
        if name == "media:content" and draw(st.booleans()):
            inner = f"<media:title>{text}</media:title>"
        return f"<{name}{_attrs(draw, pairs)}>{inner}</{name}>"
    if name == "media:group":
        children = draw(
            st.lists(
                st.sampled_from(["media:title", "media:description", "media:thumbnail"]), max_size=3
            )
        )
        inner = "".join(
            f'<{c} url="/t.jpg"/>' if c == "media:thumbnail" else f"<{c}>{draw(_TEXT)}</{c}>"
            for c in children
        )
        return f"<media:group>{inner}</media:group>"
    if name == "media:category":
        return f"<media:category{_attrs(draw, {'scheme': 'urn:s'})}>{text}</media:category>"
    if name == "itunes:category":
        pairs = {"text": draw(st.sampled_from(["News", "", "Tech"]))}
        return f"<itunes:category{_attrs(draw, pairs)}/>"
    if name == "itunes:image":
        return f'<itunes:image href="{draw(_URL)}"/>'
    if name == "source" and kind.startswith("atom"):
        inner = draw(
            st.lists(
                st.sampled_from(
                    ["<title>Origin</title>", "<id>urn:origin</id>", '<link href="/origin"/>',
                     "<author><name>Origin Author</name></author>",
                     "<updated>2026-01-01T00:00:00Z</updated>"]
                ),
                max_size=4,
            )
        )  # fmt: skip
        return f"<source>{''.join(inner)}</source>"
    if name == "source":
        return f'<source url="https://origin.example/feed">{text}</source>'
    if name == "contributor":
        return "<contributor><name>Helper</name><email>h@example.com</email></contributor>"
    if name == "x:extra":
        return draw(
            st.sampled_from([f"<x:extra>{text}</x:extra>", '<x:extra a="1"/>', "<x:extra/>"])
        )
    return f"<{name}{_attrs(draw, {})}>{text}</{name}>"


@st.composite
def _entries(draw: st.DrawFn, kind: str) -> list[str]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        children = draw(st.lists(_element(kind), max_size=9))
        if kind.startswith("atom"):
            out.append(f"<entry{_attrs(draw, {})}>{''.join(children)}</entry>")
        elif kind == "rdf":
            about = draw(
                st.sampled_from(["", ' rdf:about="https://site.example/x"', ' rdf:about="/y"'])
            )
            out.append(f"<item{about}>{''.join(children)}</item>")
        else:
            out.append(f"<item{_attrs(draw, {})}>{''.join(children)}</item>")
    return out


#: Channel children: None takes a generated text, else the element as written.
_CHANNEL: dict[str, str | None] = {
    "title": None,
    "link": None,
    "description": None,
    "language": None,
    "dc:language": None,
    "dc:title": None,
    "media:title": None,
    "ttl": "<ttl> 30 </ttl>",
    "image": "<image><title>Logo</title><url>/logo.png</url><link>/home</link></image>",
    "atom:link": '<atom:link rel="self" href="/feed"/>',
    "hub": '<atom:link rel="hub" href="https://hub.example/"/>',
    "alternate": '<atom:link rel="alternate" type="text/html" href="https://alt.example/"/>',
    "itunes:owner": "<itunes:owner><itunes:name>Owner</itunes:name>"
    "<itunes:email>o@example.com</itunes:email></itunes:owner>",
    "itunes:category": '<itunes:category text="News"><itunes:category text="Politics"/>'
    "</itunes:category>",
    "itunes:image": '<itunes:image href="/cover.jpg"/>',
    "itunes:author": "<itunes:author>Pod Caster</itunes:author>",
    "managingEditor": "<managingEditor>ed@example.com (Editor)</managingEditor>",
    "lastBuildDate": "<lastBuildDate>Sat, 13 Dec 2003 18:30:02 GMT</lastBuildDate>",
    "x:extra": '<x:extra a="b"/>',
    "info": "<info type='text'>About this feed</info>",
    "copyright": "<copyright>© 2026</copyright>",
}
_DOCTYPES = [
    "",
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n',
    '<!DOCTYPE rss [\n<!ENTITY copy "&#169;">\n]>\n',
]


@dataclass(frozen=True)
class Document:
    """A generated document as fetched: bytes and response headers."""

    kind: str
    data: bytes
    headers: dict[str, str]


_ENCODINGS = [
    "utf-8", "utf-16", "windows-1251", "koi8-r", "euc-jp", "shift_jis", "gb2312", "big5",
    "iso-8859-1", "iso-8859-2", "iso-8859-5", "windows-1252", "us-ascii", "utf-8-sig",
]  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> Document:
    """An odd-but-real feed document with the headers it was served with."""
    kind = draw(st.sampled_from(["rss", "atom", "rdf", "atom03"]))
    declared = " ".join(
        f'xmlns:{p}="{u}"'
        for p, u in NAMESPACES.items()
        if p != "rdf" and (kind, p) != ("rdf", "atom")
    )
    entries = "".join(draw(_entries(kind)))
    head = draw(st.lists(st.sampled_from(sorted(_CHANNEL)), max_size=6))
    channel = "".join(
        f"<language>{draw(_LANG)}</language>" if h == "language"
        else f"<{h}>{draw(_TEXT)}</{h}>" if _CHANNEL[h] is None
        else _CHANNEL[h]
        for h in head
    )  # fmt: skip
    root_lang = f' xml:lang="{draw(_LANG)}"' if draw(st.booleans()) else ""
    if kind == "atom":
        body = (
            f'<feed xmlns="http://www.w3.org/2005/Atom" {declared}{root_lang}>'
            f"<title>{draw(_TEXT)}</title><id>urn:feed</id>{entries}</feed>"
        )
    elif kind == "atom03":
        body = (
            f'<feed version="0.3" xmlns="http://purl.org/atom/ns#" {declared}{root_lang}>'
            f"<title mode='escaped'>{draw(_TEXT)}</title><tagline>{draw(_TEXT)}</tagline>"
            f"{entries.replace('<updated>', '<modified>').replace('</updated>', '</modified>')}"
            "</feed>"
        )
    elif kind == "rdf":
        body = (
            f'<rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}" xmlns="http://purl.org/rss/1.0/" {declared}>'
            f'<channel rdf:about="https://site.example/">{channel}</channel>{entries}</rdf:RDF>'
        )
    else:
        version = draw(st.sampled_from(["2.0", "0.91", "0.92", ""]))
        body = (
            f'<rss version="{version}" {declared}{root_lang}><channel>{channel}{entries}'
            "</channel></rss>"
        )
    encoding = draw(st.sampled_from(_ENCODINGS))
    in_declaration = draw(st.sampled_from([encoding, None, "utf-8", "iso-8859-1"]))
    doctype = draw(st.sampled_from(_DOCTYPES)) if kind == "rss" else ""
    body = doctype + body
    declaration = draw(
        st.sampled_from(
            [
                f'<?xml version="1.0" encoding="{in_declaration}"?>\n' if in_declaration else "",
                f"<?xml version='1.0' encoding='{in_declaration}'?>" if in_declaration else "",
                '<?xml version="1.0"?>\n',
            ]
        )
    )
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    data = (declaration + body).encode(codec, errors="xmlcharrefreplace")
    if encoding == "utf-8-sig":
        data = codecs.BOM_UTF8 + data
    media = draw(
        st.sampled_from(
            [
                "application/rss+xml",
                "application/atom+xml",
                "application/xml",
                "text/xml",
                "text/html",
                None,
            ]
        )
    )
    headers: dict[str, str] = {}
    if media:
        charset = draw(st.sampled_from([None, encoding, "utf-8", "windows-1251"]))
        headers["Content-Type"] = media + (f"; charset={charset}" if charset else "")
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Language"] = draw(st.sampled_from(["en", "fr_FR"]))
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Location"] = draw(st.sampled_from(["https://cdn.example/f/", "/moved"]))
    return Document(kind, data, headers)
