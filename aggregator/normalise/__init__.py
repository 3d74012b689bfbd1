"""RawEntry → Item: text and HTML cleaning, canonical URLs, ids, hashes (pure).

Everything here is a pure function of its arguments; the current time is passed
in as ``now``. Beside this module: ``sanitise`` (nh3, the ammonia sanitiser, is
imported there and nowhere else) and ``urls`` (canonical URLs).
:func:`sanitize_html` is the final security gate for entry HTML: feedparser's
own sanitiser misses entity-encoded ``javascript:`` URLs, ``<!-->`` comment
tricks and more, and RSS titles come back unsanitised, so every title is
turned into plain text with :func:`clean_text`.
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from urllib.parse import unquote, urlsplit

from aggregator.model import Dateline, Item, Origin, RawEntry, Related, not_in_future, utc
from aggregator.normalise.sanitise import sanitize_html
from aggregator.normalise.urls import (
    TRACKING_PARAMS,
    TRACKING_PREFIXES,
    _http_base,
    canonical_url,
)
from aggregator.text.language import detect_language
from aggregator.text.plain import (
    FINGERPRINT_MIN_TOKENS,
    cached_tokens,
    cap_marks,
    fingerprint_tokens,
    html_to_text,
    tokens,
)
from aggregator.text.tags import language_tag

__all__ = [
    "FINGERPRINT_MIN_TOKENS",
    "SUMMARY_LIMIT",
    "TITLE_LIMIT",
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "balance_bidi",
    "cached_tokens",
    "canonical_url",
    "clean_text",
    "content_hash",
    "fingerprint_tokens",
    "html_to_text",
    "language_tag",
    "normalise_entry",
    "sanitize_html",
    "text_fingerprint",
    "truncate",
]

# ---------------------------------------------------------------------------
# Plain text

# Looks like markup: a tag, a comment, or an entity/character reference.
_MARKUP_RE = re.compile(r"<[A-Za-z/!?]|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]{1,31});")
# Invisible characters that only get in the way of reading and matching.
# ZWJ/ZWNJ (U+200C/D) are kept: Persian and emoji sequences need them.
_INVISIBLE = {
    0x00AD: None,  # soft hyphen
    0x200B: None,  # zero width space
    0x2060: None,  # word joiner
    0xFEFF: None,  # BOM / zero width no-break space
}

_INVISIBLE_RE = re.compile("[" + "".join(chr(c) for c in _INVISIBLE) + "]")

# Control characters (but not the whitespace ones, which `str.split` handles),
# surrogates and noncharacters: never part of readable text.
_UNWANTED_RE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(p | 0xFFFE)}{chr(p | 0xFFFF)}" for p in range(0, 0x110000, 0x10000))
    + "]"
)


def _drop_unwanted(text: str) -> str:
    """Remove control characters, surrogates and noncharacters; whitespace stays."""
    return _UNWANTED_RE.sub("", text)


# Explicit bidirectional formatting (UAX #9): embeddings and overrides end at
# PDF, isolates at PDI.
_BIDI_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")
_BIDI_ISOLATES = frozenset("\u2066\u2067\u2068")
_PDF, _PDI = "\u202c", "\u2069"
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


def balance_bidi(text: str) -> str:
    """``text`` with every bidi embedding, override and isolate closed within it.

    An unclosed U+202E (right-to-left override) in a title reverses whatever a
    reader shows after it: the rest of the line, the next title. Closers
    without an opener are dropped and missing ones appended, so each text's
    direction changes end with the text; right-to-left text written with
    balanced controls is unchanged.
    """
    if _BIDI_RE.search(text) is None:
        return text
    out: list[str] = []
    stack: list[str] = []
    for char in text:
        if char in _BIDI_EMBEDDINGS or char in _BIDI_ISOLATES:
            stack.append(char)
        elif char == _PDF:
            if not stack or stack[-1] not in _BIDI_EMBEDDINGS:
                continue  # closes nothing (an isolate's content cannot close outside it)
            stack.pop()
        elif char == _PDI:
            if not any(c in _BIDI_ISOLATES for c in stack):
                continue
            while stack.pop() not in _BIDI_ISOLATES:
                pass  # a PDI also ends the embeddings opened inside its isolate
        out.append(char)
    out.extend(_PDI if c in _BIDI_ISOLATES else _PDF for c in reversed(stack))
    return "".join(out)


def _plain_line(text: str) -> str:
    """One line of plain text: no markup interpretation, just character cleanup."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", cap_marks(text))
        if _INVISIBLE_RE.search(text) is not None:  # translate costs ~0.1 µs a character
            text = text.translate(_INVISIBLE)
        text = balance_bidi(text)
    text = " ".join(text.split())
    if not text.isprintable():
        # Rare: controls or format characters left once whitespace is gone.
        text = " ".join(_drop_unwanted(text).split())
    return text


@functools.lru_cache(maxsize=1024)  # a feed's authors, tags and titles recur
def clean_text(text: str) -> str:
    """Clean a short text (title, author, tag, summary) to one plain line.

    Text that contains tags or entities (RSS titles come back unsanitised) is
    first converted from HTML. Then: NFC, non-breaking and other Unicode
    spaces become spaces, control characters and invisible characters
    (soft hyphen, zero-width space, BOM) are removed, whitespace is collapsed
    and the result stripped.

    Args:
        text: the raw text.

    Returns:
        One line of plain text, possibly empty.
    """
    if _MARKUP_RE.search(text):
        text = html_to_text(text)
    return _plain_line(text)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` at a word boundary so that it is at most ``limit`` characters.

    When cut, trailing punctuation is dropped and "…" appended (counted in
    ``limit``). A single word longer than ``limit`` is cut inside the word.

    Args:
        text: plain text.
        limit: maximum length of the result, at least 2.

    Returns:
        ``text`` itself when short enough, else the shortened text.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():
        # Back up to the last whole word, unless the first word alone is too long.
        space = cut.rfind(" ")
        if space > 0:
            cut = cut[:space]
    cut = cut.rstrip(" ,;:-\u2013\u2014.\u2026")
    # A cut can fall inside a right-to-left override: close it (a few characters more).
    return balance_bidi((cut or text[: limit - 1]) + "…")


_SENTENCE_END_RE = re.compile("(?<=[.!?\u2026])[\"'\u201d\u2019)\\]]*\\s+(?=\\S)")


def _first_sentence(text: str) -> str:
    match = _SENTENCE_END_RE.search(text)
    return text[: match.start()].strip() if match else text


def _plain_paragraphs(text: str) -> str:
    """Plain text → escaped ``<p>`` paragraphs, split on blank lines."""
    paragraphs = re.split(r"\n[^\S\n]*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    out = []
    for paragraph in paragraphs:
        line = _plain_line(paragraph)
        if line:
            out.append(f"<p>{html_lib.escape(line, quote=False)}</p>")
    return "".join(out)


# ---------------------------------------------------------------------------
# Hashes

# ``json.dumps(ensure_ascii=False, sort_keys=True, separators=(",", ":"))``, built once.
_HASH_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(
    *,
    title: str,
    link: str | None,
    content_html: str,
    summary: str = "",
    dateline: Dateline | None = None,
    related: Iterable[Related] = (),
    authors: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> str:
    """Hash an item's content: it changes iff the content really changes.

    Whitespace runs in the HTML and text fields do not count, nor do the
    order or case of tags.

    Args:
        title: the item's plain-text title.
        link: canonical link or None.
        content_html: sanitised content.
        summary: plain-text summary.
        dateline: the article's dateline.
        related: related headlines.
        authors: author names, in order.
        tags: tags (order and case ignored).

    Returns:
        A sha256 hex digest.
    """
    document = {
        "title": " ".join(title.split()),
        "link": link,
        "content": " ".join(content_html.split()),
        "summary": " ".join(summary.split()),
        "dateline": [dateline.place, dateline.agency] if dateline else None,
        "related": [[r.title, r.link] for r in related],
        "authors": list(authors),
        "tags": sorted({t.casefold() for t in tags}),
    }
    encoded = _HASH_JSON.encode(document)
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


def text_fingerprint(text: str) -> str | None:
    """Fingerprint a text by its normalised tokens, to spot one story told twice.

    Case, accents, punctuation, whitespace and markup-free formatting do not
    change the fingerprint; any change of words does.

    Args:
        text: plain text (strip HTML first).

    Returns:
        A sha256 hex digest, or None when the text has fewer than
        :data:`FINGERPRINT_MIN_TOKENS` tokens.
    """
    return fingerprint_tokens(tokens(text))


# ---------------------------------------------------------------------------
# Language

#: Characters of text the detector reads after the title: a lead paragraph is
#: plenty, and its cost grows with the length.
_DETECT_SAMPLE = 400


def entry_language(declared: str | None, title: str, text: str) -> str | None:
    """An entry's language: as declared when that is a valid tag, else detected.

    Args:
        declared: the language the source declares for the entry (or its feed).
        title: the entry's plain-text title.
        text: its plain-text summary or content.

    Returns:
        A BCP 47 tag, or None when neither the source nor the detector is sure.
    """
    return language_tag(declared) or detect_language(f"{title}\n{text[:_DETECT_SAMPLE]}")


# ---------------------------------------------------------------------------
# Entries

#: Longest title derived from the text when an entry has none (characters).
TITLE_LIMIT = 80
#: Longest plain-text summary (characters).
SUMMARY_LIMIT = 300


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    """Clean, drop empties and case-insensitive duplicates, keep first spelling and order."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        cleaned = clean_text(value)
        key = cleaned.casefold()
        if cleaned and key not in seen:
            seen.add(key)
            out.append(cleaned)
    return tuple(out)


def _to_text(value: str | None, is_html: bool) -> str:
    if not value:
        return ""
    return _plain_line(html_to_text(value) if is_html else value)


def _to_html(value: str | None, is_html: bool, base: str | None) -> str:
    if not value or not value.strip():
        return ""
    value = cap_marks(value)  # before any step that normalises (matching, summaries)
    return sanitize_html(value, base_url=base) if is_html else _plain_paragraphs(value)


@functools.lru_cache(maxsize=64)  # the same for every entry of a feed
def _clean_origin(origin: Origin | None) -> Origin | None:
    """The feed's own fields, cleaned like the entry's: they are published with it
    (``atom:source``), and one lone surrogate there made its topics unrenderable."""
    if origin is None:
        return None
    title = clean_text(origin.title) if origin.title else None
    link = _drop_unwanted(origin.link) if origin.link else None
    feed_id = _drop_unwanted(origin.feed_id) if origin.feed_id else None
    if (title, link, feed_id) == (origin.title, origin.link, origin.feed_id):
        return origin
    return replace(origin, title=title or None, link=link or None, feed_id=feed_id or None)


# Text in serialised HTML: after the start or a tag, something besides spaces and
# non-breaking spaces before the next tag.
_HAS_TEXT_RE = re.compile(r"(?:^|>)(?:\s|&nbsp;|\xa0)*(?:[^\s<&\xa0]|&(?!nbsp;))")


def _is_blank_html(html: str) -> bool:
    """Sanitised HTML with nothing to read or see: no text, no image."""
    return "<img" not in html and not _HAS_TEXT_RE.search(html)


def _title_from_link(link: str) -> str:
    parts = urlsplit(link)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments:
        last = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", segments[-1])
        title = clean_text(re.sub(r"[-_+]+", " ", last))
        if title:
            return truncate(title, TITLE_LIMIT)
    return parts.hostname or link


def _clean_dateline(dateline: Dateline | None) -> Dateline | None:
    if dateline is None:
        return None
    place = clean_text(dateline.place)
    if not place:
        return None
    agency = clean_text(dateline.agency) if dateline.agency else ""
    return Dateline(place=place, agency=agency or None)


def _clean_related(related: Iterable[Related], base: str | None) -> tuple[Related, ...]:
    out = []
    for entry in related:
        title = clean_text(entry.title)
        if title:
            out.append(Related(title=title, link=canonical_url(entry.link, base=base)))
    return tuple(out)


def normalise_entry(
    raw: RawEntry,
    *,
    source: str,
    origin: Origin | None,
    extra_tags: tuple[str, ...] = (),
    now: datetime,
) -> Item:
    """Turn a parser's lenient :class:`RawEntry` into a complete, valid :class:`Item`.

    - title: plain text; when missing, the first sentence of the summary or
      content (cut at ~80 characters), else words from the link's path.
    - content_html: sanitised ``content``, else ``summary``; plain text
      becomes escaped ``<p>`` paragraphs.
    - summary: plain text of ``summary``, else of ``content``, cut at ~300.
    - link: canonical, resolved against ``raw.base_url``; ``link_as_published``
      and ``guid`` keep the link and the id as the source wrote them.
    - identity: ``raw.identity``, else the canonical link, else
      ``sha256:`` + a hash of title and content.
    - published: ``raw.published`` or ``raw.updated`` or ``now``; updated:
      ``raw.updated`` or published; a date in the future counts as missing
      (:func:`aggregator.model.not_in_future`: a few minutes ahead is clock
      skew, kept as ``now``).
    - authors and tags (``raw.tags`` + ``extra_tags``): cleaned, empty ones
      dropped, case-insensitive duplicates dropped, order kept.

    Args:
        raw: the entry as parsed.
        source: the configured source's name.
        origin: the document it came from.
        extra_tags: the source's configured tags.
        now: the current time (aware).

    Returns:
        The item, with ``content_hash`` filled.

    Raises:
        ValueError: the entry has no title, content or link; or ``now`` is naive.
    """
    now = utc(now)
    link = canonical_url(raw.link, base=raw.base_url)
    # Relative URLs in content are relative to the document, or failing that the entry page.
    content_base = _http_base(raw.base_url) or link

    content_html = _to_html(raw.content, raw.content_is_html, content_base)
    if _is_blank_html(content_html):
        # No content, or none left once sanitised (a script, an embed): the summary serves.
        content_html = _to_html(raw.summary, raw.summary_is_html, content_base) or content_html
    summary_text = _to_text(raw.summary, raw.summary_is_html) or _to_text(content_html, True)
    summary = truncate(summary_text, SUMMARY_LIMIT)

    title = clean_text(raw.title or "") if raw.title_is_html else _plain_line(raw.title or "")
    if not title:
        if summary_text:
            title = truncate(_first_sentence(summary_text), TITLE_LIMIT)
        elif link:
            title = _title_from_link(link)
        else:
            raise ValueError("entry has no title, content or link")

    identity = (raw.identity or "").strip() or link
    if not identity:
        digest = hashlib.sha256(f"{title}\n{content_html}".encode()).hexdigest()
        identity = f"sha256:{digest}"

    published = not_in_future(raw.published, now) or not_in_future(raw.updated, now) or now
    updated = not_in_future(raw.updated, now) or published
    # A feed may say it was updated before it was published; never publish that.
    updated = max(updated, published)

    authors = _dedupe(raw.authors)
    tags = _dedupe((*raw.tags, *extra_tags))
    dateline = _clean_dateline(raw.dateline)
    related = _clean_related(raw.related, _http_base(raw.base_url) or link)
    language = entry_language(raw.language, title, summary_text)

    return Item(
        source=source,
        identity=identity,
        title=title,
        link=link,
        content_html=content_html,
        summary=summary,
        published=published,
        updated=updated,
        authors=authors,
        tags=tags,
        language=language,
        dateline=dateline,
        related=related,
        origin=_clean_origin(origin),
        content_hash=content_hash(
            title=title,
            link=link,
            content_html=content_html,
            summary=summary,
            dateline=dateline,
            related=related,
            authors=authors,
            tags=tags,
        ),
        link_as_published=(raw.link or "").strip() or None,
        guid=(raw.identity or "").strip() or None,
    )
