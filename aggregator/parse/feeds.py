"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 documents: the fast path, else feedparser.

RSS and Atom feeds are read by :mod:`aggregator.parse.fastfeed` (lxml,
replaying feedparser's handlers, same result shape) after feedparser's own
code has decoded them (:func:`read_fast`: BOM, XML declaration and HTTP
charset, with feedparser's rules for their conflicts; its DOCTYPE
replacement); what the fast path declines, feedparser, the reference, reads,
and the document records why (``ParsedDocument.fast_path``, counted in
``/metrics``). This is the only module that imports feedparser. We hand it bytes (in a file-like
object, so it never opens a path or fetches a URL) plus the response headers
we got; it only parses. feedparser can raise on odd inputs (``&#xD800;``), so
every call is wrapped and becomes a :class:`~aggregator.errors.ParseError`.
Lenient at the edge: a not-well-formed but readable feed still yields its
entries (with a warning), and an entry with nothing usable is skipped with a
warning rather than failing the document.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date  # feedparser's own date reader, for the fast path
from feedparser.encodings import convert_to_utf8
from feedparser.mixin import _cp1252, _FeedParserMixin
from feedparser.sanitizer import replace_doctype

from aggregator.errors import ParseError
from aggregator.model import FeedInfo, ParsedDocument, RawEntry
from aggregator.normalise import clean_text
from aggregator.parse.fastfeed import Declined, Rules, read_plain_feed

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
    if not fast:
        return parse_with_feedparser(data, url=url, headers=headers, source=source)
    plain = read_fast(data, url=url, headers=headers)
    if isinstance(plain, Declined):
        document = parse_with_feedparser(data, url=url, headers=headers, source=source)
        return _parsed_by(document, plain.reason)
    return _parsed_by(_to_document(plain, source), "taken")


def _parsed_by(document: ParsedDocument, fast_path: str) -> ParsedDocument:
    return dataclasses.replace(document, fast_path=fast_path)


def _fix_text(text: str) -> str:
    """feedparser's repairs to every element's text: UTF-8 read as Latin-1, C1 as cp1252."""
    if text.isascii():
        return text  # neither changes ASCII
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = text  # not UTF-8 read as Latin-1 (a try costs less than a suppress)
    return text.translate(_cp1252) if _C1.search(text) else text


def _looks_like_html(text: str) -> bool:
    """feedparser's guess, which needs a ``</tag>`` or a reference: none without ``<`` or ``&``."""
    return ("<" in text or "&" in text) and bool(_FeedParserMixin.looks_like_html(text))


_C1 = re.compile("[\x80-\x9f]")


#: feedparser's decisions, for the fast path to make the same
RULES = Rules(
    namespaces={uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()},
    handlers=frozenset(
        name.split("_", 2)[2].lower()
        for name in dir(_FeedParserMixin)
        if name.startswith(("_start_", "_end_"))
    ),
    looks_like_html=_looks_like_html,
    fix_text=_fix_text,
)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*['"]([^'"]*)['"]""")
_FIRST_ELEMENT = re.compile(rb"<\w")


def _is_plain_utf8(data: bytes, headers: Mapping[str, str]) -> bool:
    """UTF-8 by every rule feedparser applies, without a conflict: no need to decode."""
    media, _, params = headers.get("content-type", "").partition(";")
    media = media.strip().lower()
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower()
    xml_media = media == "application/xml" or (
        media.startswith("application/") and media.endswith("+xml")
    )
    if headers and not (xml_media and charset in ("", "utf-8")):
        return False
    body = data.removeprefix(b"\xef\xbb\xbf")
    if body[:1] != b"<" or body[1:2] in (b"", b"\x00"):
        return False  # another BOM, UTF-16 or UTF-32 without one: feedparser decides
    declared = _DECLARED_ENCODING.match(body)
    return declared is None or declared.group(1).lower() in (b"utf-8", b"utf8")


def read_fast(
    data: bytes, *, url: str | None, headers: Mapping[str, str] | None
) -> dict[str, Any] | Declined:
    """The fast path's reading of a document, with feedparser's encoding and date rules.

    Args:
        data: the document's bytes.
        url: where it came from (the base of relative links), if known.
        headers: the HTTP response headers.

    Returns:
        feedparser's result shape, or why the fast path declines the document.
    """
    response_headers = _response_headers(url, headers)
    problem: Exception | None = None
    if _is_plain_utf8(data, response_headers):
        body = data.removeprefix(b"\xef\xbb\xbf")
    else:
        result: dict[str, Any] = {}
        try:
            body = convert_to_utf8(response_headers, data, result)
        except Exception:  # feedparser's own decoder failing: it decides what that means
            return Declined("encoding")
        if not result.get("encoding"):
            return Declined("encoding unknown")
        problem = result.get("bozo_exception")
    first = _FIRST_ELEMENT.search(body)
    if first and b"<!" in body[: first.start()]:
        _, body, _ = replace_doctype(body)
    base = response_headers.get("content-location", "")
    plain = read_plain_feed(body, url=base, headers=response_headers, rules=RULES)
    if isinstance(plain, Declined):
        return plain
    for entry in plain["entries"]:
        for key in ("published", "updated", "created"):
            if f"{key}_raw" in entry:
                raw = entry.pop(f"{key}_raw")
                entry[f"{key}_parsed"] = _parse_date(raw) if raw else None
    plain["bozo"] = problem is not None
    plain["bozo_exception"] = problem
    return plain


def _response_headers(url: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers feedparser is handed: names lower-case, the URL as ``Content-Location``."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if url and "content-location" not in response_headers:
        response_headers["content-location"] = url
    return response_headers


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
    response_headers = _response_headers(url, headers)
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
    hub = self_url = None
    for link in feed.get("links") or []:
        href = _text(link.get("href"))
        if link.get("rel") == "hub" and href and hub is None:
            hub = href
        elif link.get("rel") == "self" and href and self_url is None:
            self_url = href
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
        self_url=self_url,
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
    link = _entry_link(raw)
    content, content_is_html, content_detail = _entry_content(raw)
    summary_detail = raw.get("summary_detail")
    summary = _text(raw.get("summary"))
    if summary is not None and summary == content:
        summary = None  # RSS <description> shows up as both
    if not any((title, link, identity, content, summary)):
        return None
    details = (content_detail, summary_detail, raw.get("title_detail"))
    base_url = _first_detail(details, "base")
    language = _first_detail(details, "language")
    base = base_url or feed_link
    if link and base and not link.startswith(("https://", "http://")) and not urlsplit(link).scheme:
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
        authors=_entry_authors(raw),
        tags=_entry_tags(raw),
        language=language or feed_language,
        base_url=base_url or link or feed_link,
        title_is_html=_is_html(raw.get("title_detail")),
    )


def _entry_link(raw: Mapping[str, Any]) -> str | None:
    """The first alternate HTML link, else the first alternate one, else ``link``."""
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
    return link or _text(raw.get("link"))


def _entry_content(
    raw: Mapping[str, Any],
) -> tuple[str | None, bool, Mapping[str, Any] | None]:
    """The content (an HTML one first), whether it is HTML, and its detail."""
    contents = [c for c in raw.get("content") or [] if _text(c.get("value"))]
    if not contents:
        return None, True, None
    chosen = next((c for c in contents if _is_html(c)), contents[0])
    return _text(chosen.get("value")), _is_html(chosen), chosen


def _entry_authors(raw: Mapping[str, Any]) -> tuple[str, ...]:
    authors: list[str] = []
    for author in raw.get("authors") or []:
        name = _text(author.get("name")) or _text(author.get("email"))
        if name and name not in authors:
            authors.append(name)
    if not authors and _text(raw.get("author")):
        authors.append(str(raw.get("author")).strip())
    return tuple(authors)


def _entry_tags(raw: Mapping[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for tag in raw.get("tags") or []:
        term = _text(tag.get("term")) or _text(tag.get("label"))
        if term and term not in tags:
            tags.append(term)
    return tuple(tags)


def _first_detail(details: Iterable[Mapping[str, Any] | None], key: str) -> str | None:
    """``key`` (``base``, ``language``) of the first detail that has one."""
    for detail in details:
        if detail and _text(detail.get(key)):
            return _text(detail.get(key))
    return None
