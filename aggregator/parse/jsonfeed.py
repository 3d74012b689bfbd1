"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1).

feedparser 6 does not read JSON Feed, so this is our own small reader:
strict about what a JSON Feed is (an object with a jsonfeed.org ``version``
and an ``items`` list), lenient about each item (a bad item is skipped with a
warning, an unparseable date is dropped with a warning).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.model import FeedInfo, ParsedDocument, RawEntry

__all__ = ["is_json_feed", "parse_json_feed"]

_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


def _version_ok(value: object) -> bool:
    if not isinstance(value, str):
        return False
    normalised = value.strip().rstrip("/").replace("http://", "https://", 1)
    return normalised in _VERSIONS


def is_json_feed(data: bytes) -> bool:
    """Cheap sniff: does this look like a JSON Feed document?

    Args:
        data: the document's bytes.

    Returns:
        True when the bytes are a JSON object with a jsonfeed.org version.
    """
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b"jsonfeed.org/version/" in data[:65536]


def parse_json_feed(data: bytes, *, source: str) -> ParsedDocument:
    """Parse a JSON Feed document.

    Args:
        data: the document's bytes (UTF-8, UTF-16 or UTF-32 JSON).
        source: the configured source name, for messages.

    Returns:
        The parsed document.

    Raises:
        ParseError: not JSON, or JSON that is not a JSON Feed 1.0/1.1.
    """
    try:
        doc = json.loads(data.decode("utf-8-sig") if data.startswith(b"\xef\xbb\xbf") else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(source, f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ParseError(source, "not a JSON Feed: the document is not a JSON object")
    if not _version_ok(doc.get("version")):
        raise ParseError(
            source, f"not a JSON Feed: version is {doc.get('version')!r}, not a jsonfeed.org URL"
        )
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError(source, "not a JSON Feed: 'items' is missing or not a list")

    warnings: list[str] = []
    language = _str(doc.get("language"))
    hubs = doc.get("hubs")
    hub = None
    if isinstance(hubs, list):
        hub = next(
            (_str(h.get("url")) for h in hubs if isinstance(h, dict) and _str(h.get("url"))), None
        )
    home = _str(doc.get("home_page_url"))
    info = FeedInfo(
        title=_str(doc.get("title")),
        link=home,
        feed_id=_str(doc.get("feed_url")) or home,
        language=language,
        hub=hub,
        self_url=_str(doc.get("feed_url")),
    )
    feed_authors = _authors(doc)
    entries: list[RawEntry] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            warnings.append(f"item {position} skipped: not a JSON object")
            continue
        entry = _entry(item, position, feed_authors, language, home, warnings)
        if entry is not None:
            entries.append(entry)
    return ParsedDocument(entries=tuple(entries), feed=info, warnings=tuple(warnings))


def _str(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ids written as numbers: the spec says string, people write 1
    return None


def _authors(obj: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    raw = obj.get("authors")
    if not isinstance(raw, list):
        raw = [obj.get("author")] if isinstance(obj.get("author"), dict) else []
    for author in raw:
        if isinstance(author, dict):
            name = _str(author.get("name")) or _str(author.get("url"))
            if name and name not in names:
                names.append(name)
    return tuple(names)


def _date(value: object, field: str, position: int, warnings: list[str]) -> datetime | None:
    text = _str(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        warnings.append(f"item {position}: {field} {text!r} is not an RFC 3339 date; ignored")
        return None
    # RFC 3339 requires an offset; a missing one is read as UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _entry(
    item: Mapping[str, Any],
    position: int,
    feed_authors: tuple[str, ...],
    language: str | None,
    home: str | None,
    warnings: list[str],
) -> RawEntry | None:
    identity = _str(item.get("id"))
    url = _str(item.get("url"))
    title = _str(item.get("title"))
    html = _str(item.get("content_html"))
    text = _str(item.get("content_text"))
    summary = _str(item.get("summary"))
    if not any((identity, url, title, html, text, summary)):
        warnings.append(f"item {position} skipped: no id, url, title or content")
        return None
    tags = tuple(t.strip() for t in item.get("tags") or [] if isinstance(t, str) and t.strip())
    return RawEntry(
        identity=identity,
        title=title,
        link=url or _str(item.get("external_url")),
        content=html if html is not None else text,
        content_is_html=html is not None,
        summary=summary,
        summary_is_html=False,
        published=_date(item.get("date_published"), "date_published", position, warnings),
        updated=_date(item.get("date_modified"), "date_modified", position, warnings),
        authors=_authors(item) or feed_authors,
        tags=tags,
        language=_str(item.get("language")) or language,
        base_url=url or home,
    )
