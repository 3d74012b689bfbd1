"""Bad seed files: each gives exactly one clear line naming the file."""

# Typographic quotes, dashes and non-Latin letters here are deliberate.

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError, SeedFileError
from aggregator.parse import parse_feed, parse_seed
from aggregator.sources.files import read_seed

MTIME = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "seeds"


def _parse(name: str, data: bytes):  # type: ignore[no-untyped-def]
    return parse_seed(name, data, source="seeds", mtime=MTIME, now=NOW)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\r\n\t\n", "empty file"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary file (a PNG image)"),
        ("nul.txt", b"Headline\n\x00\x01\x02\x00binary\x00" * 50, "contains NUL bytes"),
        ("controls.html", bytes(range(1, 32)) * 40, "binary file"),
        ("half.xml", (DATA / "014_rss2.xml").read_bytes()[:60], "not an RSS or Atom feed"),
        ("notfeed.json", b'{"hello": "world"}', "not a JSON Feed"),
        (
            "broken.json",
            b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
            "not valid JSON",
        ),
        ("bad-front-matter.md", b"---\ntitle: [unclosed\n---\n\nBody text here.\n", "front matter"),
        ("only-controls.txt", b"\x07\x07\n", "binary file"),
    ],
)
def test_bad_file_raises_one_line_naming_it(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(SeedFileError) as info:
        _parse(name, data)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"seeds: {name}: ")
    assert reason in message
    assert info.value.path == name


def test_cut_utf8_sequence_is_one_warning_and_keeps_the_text() -> None:
    data = "Café owners protest\n\nOwners of cafés protested on Monday in Zürich.".encode()
    doc = _parse("cut.txt", data[:-2] + "é".encode()[:1])
    assert doc.entries[0].title == "Café owners protest"
    assert "\ufffd" not in (doc.entries[0].content or "")
    assert doc.warnings == ("cut.txt: file ends in the middle of a UTF-8 character (truncated?)",)


def test_half_an_atom_feed_still_yields_its_whole_entries_with_one_warning() -> None:
    data = (DATA / "015_atom.atom").read_bytes()
    cut = data[: data.index(b"</entry>") + len(b"</entry>")]
    doc = _parse("cut.atom", cut)
    assert len(doc.entries) == 1
    assert len(doc.warnings) == 1
    assert doc.warnings[0].startswith("cut.atom: feed is not well-formed")


def test_misdeclared_encoding_is_decoded_right_with_one_warning() -> None:
    # Declares UTF-8 but is Windows-1252: read as cp1252, say so once.
    page = (
        '<html><head><meta charset="utf-8"><title>Café “quotes” in Zürich</title></head>'
        "<body><p>The café owners said prices would rise — again — this winter, and the"
        " city council said it would look at rents for small businesses next year.</p>"
        "</body></html>"
    )
    doc = _parse("wrong.html", page.encode("cp1252"))
    entry = doc.entries[0]
    assert "“quotes”" in (entry.title or "")
    assert len(doc.warnings) >= 1
    assert all(w.startswith("wrong.html: ") for w in doc.warnings)
    assert any("not valid UTF-8" in w for w in doc.warnings)


def test_mixed_utf8_and_cp1252_bytes_never_become_replacement_characters() -> None:
    data = (
        "Zürich café\n\nThe café in Zürich said ".encode() + "“hello”".encode("cp1252") + b" again."
    )
    doc = _parse("mixed.txt", data)
    assert "“hello”" in (doc.entries[0].content or "")
    assert "\ufffd" not in (doc.entries[0].content or "")


def test_huge_file_is_refused_by_size_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "huge.txt").write_bytes(b"a" * 2048)
    with pytest.raises(SeedFileError) as info:
        read_seed(tmp_path, "huge.txt", source="seeds", max_bytes=1024)
    assert str(info.value) == (
        "seeds: huge.txt: file too large: 2,048 bytes, over the 1,024-byte limit"
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"<html><body>not a feed</body></html>", b'{"a": 1}', b"<rss", b"&#xD800;"],
)
def test_parse_feed_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(data, url="https://example.com/feed", headers=None, source="wire")
    assert str(info.value).startswith("wire: ")
