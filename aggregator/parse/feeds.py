"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 documents: the fast path, else feedparser.

Plain RSS 2.0 and Atom 1.0 feeds are read by :mod:`aggregator.parse.fastfeed`
(strict lxml, same result shape); it declines everything else, and
feedparser, the reference, reads that. This is the only module that imports
feedparser. We hand it bytes (in a file-like
object, so it never opens a path or fetches a URL) plus the response headers
we got; it only parses. feedparser can raise on odd inputs (``&#xD800;``), so
every call is wrapped and becomes a :class:`~aggregator.errors.ParseError`.
Lenient at the edge: a not-well-formed but readable feed still yields its
entries (with a warning), and an entry with nothing usable is skipped with a
warning rather than failing the document.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date  # feedparser's own date reader, for the fast path
from feedparser.mixin import _FeedParserMixin

from aggregator.errors import ParseError
from aggregator.model import FeedInfo, ParsedDocument, RawEntry
from aggregator.normalise import clean_text
from aggregator.parse.fastfeed import read_plain_feed

__all__ = ["parse_with_feedparser", "parse_xml_feed"]

_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")


def parse_xml_feed(
    data: bytes,
    *,
    url: str | None,
    headers: Mapping[str, str] | None,
    source: str,
    fast: bool = True,
) -> ParsedDocument:
    """Parse RSS or Atom bytes into entries and feed facts.

    Args:
        data: the document's bytes, as fetched or read.
        url: where the document came from (base for relative links), if known.
        headers: HTTP response headers (``Content-Type`` carries a charset).
        source: the configured source name, for messages.
        fast: try the strict fast path (``fastfeed``) before feedparser.

    Returns:
        The parsed document; warnings note a not-well-formed feed and skipped
        entries.

    Raises:
        ParseError: the bytes are not a feed feedparser can read.
    """
    plain = read_plain_feed(data, url=url, headers=headers) if fast else None  # None: declined
    if plain is not None:
        return _to_document(_with_feedparser_readings(plain), source)
    return parse_with_feedparser(data, url=url, headers=headers, source=source)


def _with_feedparser_readings(plain: dict[str, Any]) -> dict[str, Any]:
    """What feedparser decides with its own helpers, made by them for the fast path too.

    Dates go through its date reader, so both paths agree on every format; an
    RSS title is HTML when its guess (``looks_like_html``) says so.
    """
    rss = not plain["version"].startswith("atom")
    for entry in plain["entries"]:
        for key in ("published", "updated"):
            if key in entry:
                entry[f"{key}_parsed"] = _parse_date(entry[key])
        detail = entry.get("title_detail")
        if rss and detail and _FeedParserMixin.looks_like_html(entry.get("title") or ""):
            entry["title_detail"] = {**detail, "type": "text/html"}
    return plain


def parse_with_feedparser(
    data: bytes,
    *,
    url: str | None,
    headers: Mapping[str, str] | None,
    source: str,
) -> ParsedDocument:
    """Parse RSS or Atom bytes with feedparser alone (the reference and the fallback).

    feedparser's own HTML sanitiser and relative-URI resolution are off:
    :func:`aggregator.normalise.sanitize_html` (nh3) sanitises every HTML
    field and resolves its relative URLs against the same base, and the
    feed title is reduced to plain text here.

    Args:
        data: the document's bytes.
        url: where the document came from (base for relative links), if known.
        headers: HTTP response headers.
        source: the configured source name, for messages.

    Returns:
        The parsed document.

    Raises:
        ParseError: the bytes are not a feed feedparser can read.
    """
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if url and "content-location" not in response_headers:
        response_headers["content-location"] = url
    try:
        parsed = feedparser.parse(
            io.BytesIO(data),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        return _to_document(parsed, source)
    except ParseError:
        raise
    except Exception as exc:  # feedparser and sgmllib raise all sorts
        raise ParseError(source, f"feed parser failed: {type(exc).__name__}: {exc}") from exc


def _to_document(parsed: Any, source: str) -> ParsedDocument:
    warnings: list[str] = []
    version = parsed.get("version") or ""
    feed = parsed.get("feed") or {}
    raw_entries = parsed.get("entries") or []
    if parsed.get("bozo"):
        problem = _bozo_message(parsed.get("bozo_exception"))
        if not version and not raw_entries and not feed.get("title"):
            raise ParseError(source, f"not an RSS or Atom feed ({problem})")
        warnings.append(f"feed is not well-formed, read leniently: {problem}")
    elif not version and not raw_entries:
        raise ParseError(source, "not an RSS or Atom feed (no feed element found)")

    info = _feed_info(feed)
    language = info.language
    entries: list[RawEntry] = []
    for position, raw in enumerate(raw_entries, start=1):
        try:
            entry = _entry(raw, language, info.link)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            warnings.append(f"entry {position} skipped: {exc}")
            continue
        if entry is None:
            warnings.append(f"entry {position} skipped: no title, link, id or content")
            continue
        entries.append(entry)
    return ParsedDocument(entries=tuple(entries), feed=info, warnings=tuple(warnings))


def _bozo_message(exc: object) -> str:
    if exc is None:
        return "unknown problem"
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}"[:200] if text else name


def _text(value: object) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _feed_info(feed: Mapping[str, Any]) -> FeedInfo:
    ttl: timedelta | None = None
    raw_ttl = _text(feed.get("ttl"))
    if raw_ttl and raw_ttl.isdigit() and 0 < int(raw_ttl) <= 60 * 24 * 365:
        ttl = timedelta(minutes=int(raw_ttl))
    hub = None
    for link in feed.get("links") or []:
        if link.get("rel") == "hub" and _text(link.get("href")):
            hub = _text(link.get("href"))
            break
    # The feed title is published as plain text: never markup from the source.
    title = clean_text(_text(feed.get("title")) or "") or None
    link = _text(feed.get("link"))
    # Atom has an id; an RSS channel's identity is its link.
    feed_id = _text(feed.get("id")) or link
    return FeedInfo(
        title=title,
        link=link,
        feed_id=feed_id,
        language=_text(feed.get("language")),
        ttl=ttl,
        hub=hub,
    )


def _datetime(struct: object) -> datetime | None:
    """feedparser's ``*_parsed`` values are UTC ``struct_time``s (or junk)."""
    if not isinstance(struct, time.struct_time):
        return None
    try:
        return datetime(*struct[:6], tzinfo=UTC)
    except (ValueError, OverflowError, TypeError):
        return None


def _is_html(detail: Mapping[str, Any] | None) -> bool:
    kind = (detail or {}).get("type") or "text/html"
    return str(kind).lower() in _HTML_TYPES


def _get(raw: Mapping[str, Any], key: str) -> Any:
    # dict.get, not FeedParserDict.get: the latter maps missing keys to others
    # (updated_parsed -> published_parsed) and warns about it.
    return dict.get(raw, key) if isinstance(raw, dict) else raw.get(key)


def _entry(
    raw: Mapping[str, Any], feed_language: str | None, feed_link: str | None
) -> RawEntry | None:
    title = _text(raw.get("title"))
    identity = _text(raw.get("id"))
    link = None
    for candidate in raw.get("links") or []:
        if candidate.get("rel", "alternate") == "alternate" and _text(candidate.get("href")):
            if str(candidate.get("type") or "text/html").lower() in (
                "text/html",
                "application/xhtml+xml",
            ):
                link = _text(candidate.get("href"))
                break
            link = link or _text(candidate.get("href"))
    link = link or _text(raw.get("link"))

    content = None
    content_is_html = True
    content_detail: Mapping[str, Any] | None = None
    contents = [c for c in raw.get("content") or [] if _text(c.get("value"))]
    if contents:
        chosen = next((c for c in contents if _is_html(c)), contents[0])
        content = _text(chosen.get("value"))
        content_is_html = _is_html(chosen)
        content_detail = chosen
    summary_detail = raw.get("summary_detail")
    summary = _text(raw.get("summary"))
    if summary is not None and summary == content:
        summary = None  # RSS <description> shows up as both
    if not any((title, link, identity, content, summary)):
        return None

    authors: list[str] = []
    for author in raw.get("authors") or []:
        name = _text(author.get("name")) or _text(author.get("email"))
        if name and name not in authors:
            authors.append(name)
    if not authors and _text(raw.get("author")):
        authors.append(str(raw.get("author")).strip())
    tags: list[str] = []
    for tag in raw.get("tags") or []:
        term = _text(tag.get("term")) or _text(tag.get("label"))
        if term and term not in tags:
            tags.append(term)

    base_url = None
    for detail in (content_detail, summary_detail, raw.get("title_detail")):
        if detail and _text(detail.get("base")):
            base_url = _text(detail.get("base"))
            break
    language = None
    for detail in (content_detail, summary_detail, raw.get("title_detail")):
        if detail and _text(detail.get("language")):
            language = _text(detail.get("language"))
            break

    base = base_url or feed_link
    if link and base and not urlsplit(link).scheme:
        link = urljoin(base, link)  # a feed file read without a URL of its own
    return RawEntry(
        identity=identity,
        title=title,
        link=link,
        content=content,
        content_is_html=content_is_html,
        summary=summary,
        summary_is_html=_is_html(summary_detail),
        published=_datetime(_get(raw, "published_parsed"))
        or _datetime(_get(raw, "created_parsed")),
        updated=_datetime(_get(raw, "updated_parsed")),
        authors=tuple(authors),
        tags=tuple(tags),
        language=language or feed_language,
        base_url=base_url or link or feed_link,
        title_is_html=_is_html(raw.get("title_detail")),
    )
