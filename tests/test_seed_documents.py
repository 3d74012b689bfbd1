"""Data-driven: every file in tests/data/seeds beside its ``.expected.json``.

Sidecar keys: ``title``, ``dateline`` ({place, agency} or null), ``date`` (ISO
8601 or ``"mtime"``), ``related`` (titles, or {title, link}), ``body_start``
(the content's plain text starts with it), and optionally ``authors``,
``tags``, ``link``, ``language`` (of the normalised item: declared, else
detected), ``identity``, ``updated``, ``body_excludes``, ``content_contains``,
``warning_contains``. Feed files have ``entries`` (a list
of per-entry expectations) and ``feed``. A new case is a new file pair.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from aggregator.model import RawEntry
from aggregator.normalise import normalise_entry
from aggregator.parse import parse_seed

DATA = Path(__file__).parent / "data" / "seeds"
MTIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CASES = sorted(p for p in DATA.iterdir() if not p.name.endswith(".expected.json"))


def _plain(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _check_date(actual: datetime | None, expected: str, entry: RawEntry) -> None:
    if expected == "mtime":
        assert actual == MTIME
        assert entry.date_is_guess
    else:
        assert actual == datetime.fromisoformat(expected)
        assert not entry.date_is_guess


def _check_article(entry: RawEntry, exp: dict[str, Any], warnings: tuple[str, ...]) -> None:
    assert entry.title == exp["title"]
    if exp["dateline"] is None:
        assert entry.dateline is None
    else:
        assert entry.dateline is not None
        assert entry.dateline.place == exp["dateline"]["place"]
        assert entry.dateline.agency == exp["dateline"]["agency"]
    _check_date(entry.published, exp["date"], entry)
    related = [
        {"title": r.title, "link": r.link} if isinstance(e, dict) else r.title
        for r, e in zip(entry.related, exp["related"], strict=False)
    ]
    assert related == exp["related"]
    assert len(entry.related) == len(exp["related"])
    assert entry.content is not None
    body = _plain(entry.content)
    assert body.startswith(exp["body_start"]), body[:200]
    for unwanted in exp.get("body_excludes", []):
        assert unwanted not in entry.content, unwanted
    for wanted in exp.get("content_contains", []):
        assert wanted in entry.content, wanted
    for key in ("authors", "tags"):
        if key in exp:
            assert list(getattr(entry, key)) == exp[key]
    for key in ("link", "identity"):
        if key in exp:
            assert getattr(entry, key) == exp[key]
    if "language" in exp:
        item = normalise_entry(entry, source="seeds", origin=None, now=NOW)
        assert item.language == exp["language"]
    if "updated" in exp:
        assert entry.updated == datetime.fromisoformat(exp["updated"])
    if "warning_contains" in exp:
        assert any(exp["warning_contains"] in w for w in warnings), warnings
    # Lenient edge, strict inside: never a future date, always a summary.
    assert entry.published is not None and entry.published <= NOW
    assert entry.summary and not entry.summary_is_html


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_seed_document(path: Path) -> None:
    exp = json.loads(path.with_name(path.name + ".expected.json").read_text(encoding="utf-8"))
    doc = parse_seed(path.name, path.read_bytes(), source="seeds", mtime=MTIME, now=NOW)
    for warning in doc.warnings:
        assert warning.startswith(path.name + ": ")  # every note names its file
    if "entries" not in exp:
        assert len(doc.entries) == 1
        _check_article(doc.entries[0], exp, doc.warnings)
        return
    assert len(doc.entries) == len(exp["entries"])
    for entry, want in zip(doc.entries, exp["entries"], strict=True):
        assert entry.identity == want["identity"]
        assert entry.title == want["title"]
        assert entry.link == want["link"]
        assert entry.published == datetime.fromisoformat(want["date"])
        for key in ("authors", "tags"):
            if key in want:
                assert list(getattr(entry, key)) == want[key]
        if "summary_contains" in want:
            assert want["summary_contains"] in (entry.summary or "")
    feed = exp["feed"]
    assert doc.feed.title == feed["title"]
    if "ttl_minutes" in feed:
        assert doc.feed.ttl is not None and doc.feed.ttl.total_seconds() == feed["ttl_minutes"] * 60
    for key in ("hub", "language"):
        if key in feed:
            assert getattr(doc.feed, key) == feed[key]
    if "warnings" in exp:
        assert len(doc.warnings) == exp["warnings"]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20
