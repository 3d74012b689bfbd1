"""Checks a published Atom document the way a strict reader would.

RELAX NG validation against RFC 4287's schema, plus the prose rules the schema
cannot express: zoned dates, absolute and unique ids, an author on the feed or
on every entry, an alternate link for entries without content.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from .conftest import shared_path

A = "{http://www.w3.org/2005/Atom}"
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@lru_cache(maxsize=1)
def _schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(shared_path("schema", "rfc4287-atom.rng"))))


def _absolute(iri: str) -> bool:
    parts = urlsplit(iri)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in ("urn", "tag"))


def check_atom(data: bytes, *, name: str = "document") -> etree._Element:
    """Validate ``data``; raise AssertionError naming the rule that failed."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    schema = _schema()
    assert schema.validate(root), f"{name}: RELAX NG: {schema.error_log.last_error}"
    for el in root.iter(A + "updated", A + "published"):
        assert _DATE.match(el.text or ""), f"{name}: date without zone: {el.text!r}"
    ids = [el.text or "" for el in root.iter(A + "id") if el.getparent().tag != A + "source"]
    for i in ids:
        assert _absolute(i), f"{name}: id is not an absolute IRI: {i!r}"
    entry_ids = [e.findtext(A + "id") for e in root.findall(A + "entry")]
    assert len(entry_ids) == len(set(entry_ids)), f"{name}: duplicate entry ids"
    feed_author = root.find(A + "author") is not None
    for entry in root.findall(A + "entry"):
        eid = entry.findtext(A + "id")
        has_author = entry.find(A + "author") is not None or (
            entry.find(A + "source") is not None
            and entry.find(A + "source").find(A + "author") is not None
        )
        assert feed_author or has_author, f"{name}: entry {eid} has no author and the feed has none"
        if entry.find(A + "content") is None:
            alternates = [
                link
                for link in entry.findall(A + "link")
                if link.get("rel", "alternate") == "alternate"
            ]
            assert alternates, f"{name}: entry {eid} has neither content nor an alternate link"
    return root


def atom_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.atom"))
