"""Repair mojibake: text whose UTF-8 was once decoded with the wrong charset.

"CafÃ© owners", "close â€” a claim", "ÐŸÑ€Ð¸Ð²ÐµÑ‚": the bytes were right, a
program on the way read them as Windows-1252 (or Latin-1) and wrote the result
back as UTF-8, so decoding the file correctly still shows garbage. ftfy (the
maintained library for exactly this, imported here and nowhere else, on the
first text that looks broken: its tables and regexes cost a parse worker
3-6 MiB, and most feeds never need them) undoes it when its heuristics are
sure, and leaves well-formed text of any language alone. Only ftfy's encoding
repair runs: no quote uncurling, no width or ligature changes, so a repaired
text differs from the original only where it was broken.

Every repair is reported (one line, naming what was repaired and how), so a
source that keeps sending broken text can be told about it.
"""

# Non-Latin letters, typographic quotes and dashes here are deliberate.
# ruff: noqa: RUF002, RUF003

from __future__ import annotations

import dataclasses
import re

from aggregator.model import Dateline, ParsedDocument, RawEntry, Related

__all__ = ["repair_document", "repair_text"]

# ftfy's names for the codecs it undid, as a reader knows them.
_CODEC_NAMES = {
    "sloppy-windows-1252": "Windows-1252",
    "windows-1252": "Windows-1252",
    "latin-1": "Latin-1",
    "iso-8859-1": "Latin-1",
    "sloppy-windows-1251": "Windows-1251",
    "windows-1251": "Windows-1251",
    "macroman": "Mac Roman",
    "cp437": "DOS code page 437",
}


def _pairs(codec: str) -> str:
    """A regex for a UTF-8 lead byte then a continuation byte, both read as ``codec``."""
    leads = bytes(range(0xC2, 0xF5)).decode(codec, errors="ignore")
    continuations = bytes(range(0x80, 0xC0)).decode(codec, errors="ignore")
    return f"[{re.escape(leads)}][{re.escape(continuations)}]"


# Mojibake of UTF-8 always has a lead byte's character right before a
# continuation byte's: "Ã©", "â€", "Ø§", "Ð¸", "Рџ". Text without such a pair
# cannot be UTF-8 read as Windows-1252, Latin-1 or Windows-1251, and skips
# ftfy's slower whole-text heuristics.
_CODECS = ("cp1252", "latin-1", "cp1251")


def _read_as(first: int, end: int) -> str:
    """The bytes ``first`` to ``end - 1`` as each of :data:`_CODECS` reads them."""
    return "".join(bytes(range(first, end)).decode(c, errors="ignore") for c in _CODECS)


_SUSPECT = re.compile("|".join(_pairs(codec) for codec in _CODECS))
# Any of their lead characters then any of their continuations: looser, but a
# regex starting with one class is scanned for in C, and most text has no such
# pair, so the exact pattern above rarely runs.
_MAYBE_SUSPECT = re.compile(
    f"[{re.escape(_read_as(0xC2, 0xF5))}][{re.escape(_read_as(0x80, 0xC0))}]"
)


def repair_text(text: str) -> tuple[str, str | None]:
    """Undo mojibake in ``text``.

    Args:
        text: decoded text.

    Returns:
        ``(text, None)`` when nothing was wrong, else the repaired text and a
        short description of the repair ("UTF-8 read as Windows-1252").
    """
    if text.isascii() or not _MAYBE_SUSPECT.search(text) or not _SUSPECT.search(text):
        return text, None
    from ftfy import fix_encoding_and_explain  # on first use: see the module's docstring

    fixed, steps = fix_encoding_and_explain(text)
    if fixed == text or not steps:
        return text, None
    encoded = [parameter for action, parameter in steps if action == "encode"]
    if encoded:
        how = "UTF-8 read as " + " then ".join(_CODEC_NAMES.get(e, e) for e in encoded)
    else:
        how = "inconsistent UTF-8"
    return fixed, how


class _Repairs:
    """Repairs one entry's fields and remembers which were broken."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.how: list[str] = []

    def text(self, name: str, value: str | None) -> str | None:
        if value is None:
            return None
        fixed, how = repair_text(value)
        if how is not None:
            if name not in self.fields:
                self.fields.append(name)
            if how not in self.how:
                self.how.append(how)
        return fixed

    def texts(self, name: str, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.text(name, v) or "" for v in values)


def _repair_entry(raw: RawEntry) -> tuple[RawEntry, str | None]:
    repairs = _Repairs()
    dateline = raw.dateline
    if dateline is not None:
        dateline = Dateline(
            place=repairs.text("dateline", dateline.place) or "",
            agency=repairs.text("dateline", dateline.agency),
        )
    related = tuple(
        Related(title=repairs.text("related", r.title) or "", link=r.link) for r in raw.related
    )
    title = repairs.text("title", raw.title)
    content = repairs.text("content", raw.content)
    summary = repairs.text("summary", raw.summary)
    authors = repairs.texts("authors", raw.authors)
    tags = repairs.texts("tags", raw.tags)
    if not repairs.fields:
        return raw, None  # most entries: no copy made
    fixed = dataclasses.replace(
        raw,
        title=title,
        content=content,
        summary=summary,
        authors=authors,
        tags=tags,
        dateline=dateline,
        related=related,
    )
    name = raw.identity or raw.link or raw.title or "an entry"
    note = f"mojibake repaired in {name}: {', '.join(repairs.fields)} ({'; '.join(repairs.how)})"
    return fixed, note


def repair_document(doc: ParsedDocument) -> ParsedDocument:
    """Undo mojibake in every text field of every entry, and in the feed's title.

    Args:
        doc: a parsed feed.

    Returns:
        The document with repaired fields and one warning per repaired entry
        (``doc`` itself when nothing needed repair).
    """
    notes: list[str] = []
    entries: list[RawEntry] = []
    for raw in doc.entries:
        fixed, note = _repair_entry(raw)
        entries.append(fixed)
        if note is not None:
            notes.append(note)
    feed = doc.feed
    if feed.title is not None:
        title, how = repair_text(feed.title)
        if how is not None:
            feed = dataclasses.replace(feed, title=title)
            notes.append(f"mojibake repaired in the feed title ({how})")
    if not notes:
        return doc
    return dataclasses.replace(
        doc, entries=tuple(entries), feed=feed, warnings=(*doc.warnings, *notes)
    )
