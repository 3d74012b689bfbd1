"""OPML: documents beside their expected outlines, hostile XML, and round trips."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.sources.opml import OpmlOutline, parse_opml, render_opml

DATA = Path(__file__).parent / "data" / "opml"
DOCUMENTS = sorted(DATA.glob("*.opml"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.stem for d in DOCUMENTS])
def test_parse_opml(document: Path) -> None:
    expected = json.loads(document.with_suffix(".expected.json").read_text(encoding="utf-8"))

    outlines = parse_opml(document.read_bytes(), name=document.name)

    got = [asdict(o) | {"categories": list(o.categories)} for o in outlines]
    assert got == expected


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><body><outline text="&lol9;" xmlUrl="https://x.example/rss"/></body></opml>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://x.example/rss"/></body></opml>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE opml SYSTEM "http://127.0.0.1:9/evil.dtd">
<opml version="2.0"><body><outline text="ok" xmlUrl="https://x.example/rss"/></body></opml>
"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BILLION_LAUGHS, "subs.opml: entity declaration 'lol' refused"),
        (EXTERNAL_ENTITY, "subs.opml: entity declaration 'secret' refused"),
        (
            b"<rss version='2.0'><channel/></rss>",
            "subs.opml: not an OPML document (root element is <rss>)",
        ),
        (
            b"<opml><body><outline text='x'></body></opml>",
            "subs.opml: not well-formed XML: mismatched tag",
        ),
        (b"", "subs.opml: not well-formed XML: no element found"),
        (b"<?xml version='1.0' encoding='no-such-codec'?><opml/>", "subs.opml: "),
    ],
    ids=["billion laughs", "external entity", "not opml", "malformed", "empty", "bad encoding"],
)
def test_hostile_or_broken_documents_are_parse_errors(data: bytes, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ParseError) as info:
        parse_opml(data, name="subs.opml")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 1.0


def test_external_dtd_is_not_fetched() -> None:
    # Port 9 on loopback: if expat tried to load the DTD it would fail loudly;
    # it does not, and the document reads normally.
    outlines = parse_opml(EXTERNAL_DTD, name="subs.opml")
    assert [o.xml_url for o in outlines] == ["https://x.example/rss"]


OUTLINES = [
    OpmlOutline(
        "Wire & World <1>",
        "https://wire.example.com/world.rss?a=1&b=2",
        "https://wire.example.com/",
        ("News", "World"),
    ),
    OpmlOutline("Local", "https://local.example.com/feed", None, ("News",)),
    OpmlOutline("Top", "https://top.example.com/atom.xml", None, ()),
    OpmlOutline('Tech "quoted"', "https://tech.example.com/feed", None, ("Tech",)),
    OpmlOutline("Deep", "https://deep.example.com/feed", None, ("News", "World", "Europe")),
]


def test_render_then_parse_round_trips() -> None:
    document = render_opml(OUTLINES, title="Exported")

    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<opml version=\"2.0\">")
    assert b"<title>Exported</title>" in document
    # Grouping into folders changes the order, never the outlines.
    parsed = parse_opml(document, name="export.opml")
    assert sorted(parsed, key=lambda o: o.xml_url) == sorted(OUTLINES, key=lambda o: o.xml_url)


def test_render_groups_categories_into_one_folder_each() -> None:
    document = render_opml(OUTLINES, title="t").decode()

    assert document.count('<outline text="News">') == 1
    assert document.count('<outline text="World">') == 1
    assert 'xmlUrl="https://wire.example.com/world.rss?a=1&amp;b=2"' in document


def test_render_drops_characters_xml_cannot_carry() -> None:
    outline = OpmlOutline("bell\x07 title", "https://x.example/rss")

    document = render_opml([outline], title="t\x00itle")

    assert parse_opml(document, name="x")[0].title == "bell title"
    assert b"<title>title</title>" in document
