"""Bytes to entries: pick the right reader for a document and run it.

:func:`parse_feed` reads a remote feed (RSS, Atom, JSON Feed).
:func:`parse_seed` reads one local seed file: a plain-text, Markdown or HTML
article (one entry) or a feed file (one entry per feed entry). The file
extension chooses the reader; the content overrides it when it plainly says
otherwise (an ``.xml`` that is HTML, a ``.txt`` that is a feed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePosixPath

from aggregator.errors import ParseError, SeedFileError
from aggregator.model import FeedInfo, ParsedDocument
from aggregator.parse.article import (
    FrontMatterError,
    extract_article,
    parse_html_article,
    parse_markdown_article,
)
from aggregator.parse.feeds import parse_xml_feed
from aggregator.parse.jsonfeed import is_json_feed, parse_json_feed
from aggregator.parse.mojibake import repair_document, repair_text
from aggregator.parse.seedtext import parse_text_article
from aggregator.parse.text import DecodeError, decode, looks_binary
from aggregator.text.bounds import MAX_PAGE_BYTES, bound_document, bound_html, page_refusal

__all__ = ["SEED_KINDS", "parse_feed", "parse_page", "parse_seed", "seed_identity", "sniff_kind"]

#: extension -> reader kind
SEED_KINDS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".xml": "feed",
    ".rss": "feed",
    ".atom": "feed",
    ".rdf": "feed",
    ".json": "jsonfeed",
}

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)
#: Content-Types a page's article may come in (none at all is sniffed)
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_SEED_NAME = re.compile(r"^\d+_(?P<hash>[0-9a-fA-F]{8,64})\.[A-Za-z0-9]+$")
_FEED_ROOT = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(?:rss|feed|RDF)\b")
_HTML_ROOT = re.compile(
    rb"\A(?:\s|<!--.*?-->)*(?:<!doctype\s+html|<html\b|<head\b|<body\b)", re.I | re.S
)


def seed_identity(relpath: str) -> str:
    """The stable identity of a seed article.

    Args:
        relpath: POSIX path relative to the seeds folder.

    Returns:
        ``"seed:<hex>"`` from a ``NNN_<hex>.ext`` file name, else
        ``"path:<relpath>"``.
    """
    m = _SEED_NAME.match(PurePosixPath(relpath).name)
    if m:
        return "seed:" + m.group("hash").lower()
    return "path:" + PurePosixPath(relpath).as_posix()


def _ascii_head(data: bytes) -> bytes:
    """The first KiB as ASCII-compatible bytes (UTF-16/32 reduced to 8-bit)."""
    head = data[:4096]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            text = head[len(bom) :].decode(codec, errors="ignore")
            return text.encode("ascii", errors="replace")
    return head.lstrip(b"\xef\xbb\xbf")


def sniff_kind(data: bytes, default: str) -> str:
    """Override the extension's reader when the content plainly says otherwise.

    Args:
        data: the document's bytes.
        default: the reader the extension chose.

    Returns:
        ``"feed"``, ``"jsonfeed"``, ``"html"``, ``"markdown"`` or ``"text"``.
    """
    head = _ascii_head(data).lstrip()
    if head.startswith(b"{") and is_json_feed(data):
        return "jsonfeed"
    if head.startswith((b"{", b"[")) and default == "jsonfeed":
        return "jsonfeed"  # JSON, but not a feed: the reader says why
    if _HTML_ROOT.match(head):
        return "html"
    if head.startswith(b"<"):
        if _FEED_ROOT.search(head[:2048]):
            return "feed"
        return default if default in ("feed", "html") else "html"
    if default == "text" and re.match(rb"---[ \t]*\r?\n[\s\S]*?\r?\n---[ \t]*\r?\n", head):
        return "markdown"
    if default in ("feed", "jsonfeed"):
        return "text"  # a feed-named file that holds prose
    return default


def parse_seed(
    relpath: str,
    data: bytes,
    *,
    source: str,
    mtime: datetime,
    now: datetime,
) -> ParsedDocument:
    """Read one seed file into a document.

    Args:
        relpath: POSIX path relative to the seeds folder.
        data: the file's bytes.
        source: the configured source name, for messages.
        mtime: the file's modification time (aware).
        now: the current time (aware); no entry date may be later.

    Returns:
        One entry for an article, one per feed entry for a feed file; the
        warnings name the file.

    Raises:
        SeedFileError: empty, binary, undecodable, not a readable document,
            or without usable content. ``str()`` names the file and reason.
    """
    if not data.strip():
        raise SeedFileError(source, relpath, "empty file")
    binary = looks_binary(data)
    if binary:
        raise SeedFileError(source, relpath, binary)
    suffix = PurePosixPath(relpath).suffix.lower()
    kind = sniff_kind(data, SEED_KINDS.get(suffix, "text"))

    if kind in ("feed", "jsonfeed"):
        try:
            doc = (
                parse_json_feed(data, source=source)
                if kind == "jsonfeed"
                else parse_xml_feed(data, url=None, headers=None, source=source)
            )
        except ParseError as exc:
            raise SeedFileError(source, relpath, exc.message) from exc
        if not doc.entries:
            problem = "; ".join(doc.warnings) or "the feed has no entries"
            raise SeedFileError(source, relpath, f"no usable entries ({problem})")
        doc = repair_document(bound_document(doc))
        return ParsedDocument(
            entries=doc.entries,
            feed=doc.feed,
            warnings=tuple(f"{relpath}: {w}" for w in doc.warnings),
        )

    try:
        decoded = decode(data)
    except DecodeError as exc:
        raise SeedFileError(source, relpath, str(exc)) from exc
    if not decoded.text.strip():
        raise SeedFileError(
            source, relpath, "no text content (only whitespace or control characters)"
        )
    text, repaired = repair_text(decoded.text)
    identity = seed_identity(relpath)
    reader = {
        "text": parse_text_article,
        "markdown": parse_markdown_article,
        "html": parse_html_article,
    }[kind]
    try:
        entry, warnings = reader(text, relpath=relpath, identity=identity, mtime=mtime, now=now)
    except FrontMatterError as exc:
        raise SeedFileError(source, relpath, str(exc)) from exc
    except ValueError as exc:
        raise SeedFileError(source, relpath, str(exc)) from exc
    if not entry.title and not entry.content:
        raise SeedFileError(source, relpath, "no usable content")
    if repaired is not None:
        warnings = (f"mojibake repaired ({repaired})", *warnings)
    notes = tuple(f"{relpath}: {w}" for w in (*decoded.warnings, *warnings))
    doc = bound_document(ParsedDocument(entries=(entry,), feed=FeedInfo(title=entry.title)))
    notes += tuple(f"{relpath}: {w}" for w in doc.warnings)
    return ParsedDocument(entries=doc.entries, feed=doc.feed, warnings=notes)


def parse_feed(
    data: bytes,
    *,
    url: str | None,
    headers: Mapping[str, str] | None,
    source: str,
    fast: bool = True,
) -> ParsedDocument:
    """Read a remote feed: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed 1.0/1.1.

    Args:
        data: the response body.
        url: the final URL (base for relative links).
        headers: the response headers.
        source: the configured source name, for messages.
        fast: try the strict fast path first (the same result where it takes
            the document); False reads every XML feed with feedparser.

    Returns:
        The parsed document, bounded by :func:`~aggregator.text.bounds.bound_document`
        (entries, field sizes, nesting depth; each cap noted in its warnings).

    Raises:
        ParseError: the bytes are not a feed.
    """
    if not data.strip():
        raise ParseError(source, "empty document")
    # The body decides, not the Content-Type: servers label feeds wrongly.
    if _ascii_head(data).lstrip().startswith(b"{"):
        return repair_document(bound_document(parse_json_feed(data, source=source)))
    # Capped first, so the repair never reads more than the caps let through.
    return repair_document(
        bound_document(parse_xml_feed(data, url=url, headers=headers, source=source, fast=fast))
    )


def parse_page(
    data: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    source: str,
    selector: str | None = None,
) -> str:
    """Read the article of an entry's web page (``full_content``), unsanitised.

    Args:
        data: the response body.
        url: the page's final URL (base of its relative links).
        headers: the response headers (names lower-case): Content-Type and its charset.
        source: the configured source name, for messages.
        selector: a CSS selector of the article body, overriding the extractor.

    Returns:
        The article body as an HTML fragment with absolute links, bounded
        like a feed's content field.

    Raises:
        ParseError: the page is not HTML, cannot be decoded, or has no article text.
    """
    content_type = headers.get("content-type", "")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime and mime not in _PAGE_TYPES:
        raise ParseError(source, f"{url}: not an HTML page ({mime})")
    if not mime and not _HTML_ROOT.match(data[:4096]):
        raise ParseError(source, f"{url}: not an HTML page")
    if len(data) > MAX_PAGE_BYTES:
        raise ParseError(
            source, f"{url}: page is {len(data):,} bytes, over the {MAX_PAGE_BYTES:,}-byte limit"
        )
    charset = _CHARSET_PARAM.search(content_type)
    try:
        text = decode(data, declared=charset.group(1).lower() if charset else None).text
    except DecodeError as exc:
        raise ParseError(source, f"{url}: {exc}") from exc
    # Measured before lxml sees the page: its parser is quadratic in attributes.
    refusal = page_refusal(text)
    if refusal is not None:
        raise ParseError(source, f"{url}: {refusal}")
    try:
        article = extract_article(text, url=url, selector=selector)
    except ValueError as exc:
        raise ParseError(source, f"{url}: {exc}") from exc
    if article is None:
        found = f"nothing matches the selector {selector!r}" if selector else "no article text"
        raise ParseError(source, f"{url}: {found}")
    return bound_html(article).html
