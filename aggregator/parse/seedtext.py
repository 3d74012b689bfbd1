"""Plain-text news articles: read them the way a careful editor would.

A scraped or pasted article is a family of styles rather than a format::

    Iranian Deputy Foreign Minister:          <- kicker (ends with a colon)
    Iran Deputy Foreign Minister Abbas ...    <- photo caption
    Qom (IP): Emphasizing that ...            <- dateline, then the lead
    Iran PressIran News: Seyed Abbas ...      <- breadcrumbs glued to the text
    Read More:                                <- related headlines, not body
    New US administration willing to ...

or a headline line, ``By Jane Doe``, ``Published: 2026-11-20 14:05 UTC``,
``LONDON (Reuters) - ...``, ``Tags: a, b``, setext-underlined headings,
hard-wrapped or one-line-per-paragraph bodies. This module turns all of them
into one :class:`~aggregator.model.RawEntry`: a headline that reads as one
(never the dateline, never a cut-off sentence), the dateline split out,
boilerplate dropped, related headlines apart, paragraphs as escaped ``<p>``.

Everything here is pure: no I/O, ``now`` and the file's ``mtime`` are passed in.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.model import Dateline, RawEntry, Related, not_in_future
from aggregator.parse.datelines import (
    _dateline_date,
    _place_case,
    _table_dateline_date,
    parse_date,
    split_dateline,
)
from aggregator.parse.paragraphs import (
    _blocks,
    _join_lines,
    _sentences,
    _split_block,
    humanise_filename,
    paragraphs_to_html,
    summarise,
)
from aggregator.parse.textmeta import (
    _ATX,
    _BULLET,
    _GUILLEMET_QUOTE,
    _MD_LINK,
    _META,
    _QUOTE,
    _SENTENCE_END,
    _SETEXT,
    _URL,
    Metadata,
    _is_noise,
    _metadata_line,
    _strip_glued_crumb,
)
from aggregator.text.labels import labels
from aggregator.text.plain import tokens

__all__ = [
    "Metadata",
    "extract_related",
    "humanise_filename",
    "normalise_line",
    "paragraphs_to_html",
    "parse_date",
    "parse_text_article",
    "split_dateline",
    "summarise",
]


# ------------------------------------------------------------------------ lines

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000\u1680]+")
_ZERO_WIDTH = re.compile("[\u200b\u2060\u00ad]")
# "Nagorno- Karabakh": a hyphen left dangling by a scraper before a capital.
_DANGLING_HYPHEN = re.compile(r"(?<=[^\W\d_])- (?=[A-Z])")


def normalise_line(line: str) -> str:
    """Collapse every kind of space (NBSP included) and drop zero-width marks.

    Args:
        line: one line of text.

    Returns:
        The line with single ASCII spaces, stripped.
    """
    return _SPACES.sub(" ", _ZERO_WIDTH.sub("", line)).strip()


def _fix_text(text: str) -> str:
    return _DANGLING_HYPHEN.sub("-", text)


# --------------------------------------------------------------------- related


def _related_item(line: str) -> Related | None:
    line = _BULLET.sub("", line).strip()
    if not line:
        return None
    m = _MD_LINK.match(line)
    if m:
        return Related(title=normalise_line(m.group("title")), link=m.group("url"))
    url = _URL.search(line)
    if url:
        title = (line[: url.start()] + line[url.end() :]).strip(" -–—:|()<>[]")
        if not title:
            return None
        return Related(title=title, link=url.group(0).rstrip(".,;"))
    return Related(title=_fix_text(line))


def extract_related(lines: Sequence[str]) -> tuple[list[str], list[Related]]:
    """Take "Read More:" / "Читайте также:" / "اقرأ المزيد:" headlines out of the lines.

    The labels are every language table's ``related`` (see
    :mod:`aggregator.text.labels`).

    A marker line on its own starts a list that runs to the end (bare URLs on
    their own line attach to the headline above); a marker with text after the
    colon is a single related headline wherever it stands.

    Args:
        lines: normalised lines of the article.

    Returns:
        ``(remaining lines, related headlines)``.
    """
    kept: list[str] = []
    related: list[Related] = []
    in_list = False
    for line in lines:
        if in_list:
            if not line:
                continue
            if _SENTENCE_END.search(line) and len(line.split()) > 30:
                in_list = False  # a paragraph after all: the list has ended
                kept.append(line)
                continue
            if _URL.fullmatch(line) and related and related[-1].link is None:
                related[-1] = Related(title=related[-1].title, link=line)
                continue
            if _META.match(line) or _is_noise(line):
                kept.append(line)
                continue
            item = _related_item(line)
            if item is not None:
                related.append(item)
            continue
        m = labels().related_head.match(line)
        if m and len(line) <= 200:
            inline = (m.group("inline") or "").strip()
            if inline:
                item = _related_item(inline)
                if item is not None:
                    related.append(item)
            else:
                in_list = True
            kept.append("")
            continue
        kept.append(line)
    return kept, related


# --------------------------------------------------------------------- parsing


def _head_like(line: str) -> bool:
    """Could this line be a kicker, headline, caption or label (not body)?"""
    words = len(line.split())
    if words > 25 or len(line) > 180:
        return False
    if split_dateline(line)[0] is not None and words > 6:
        return False
    return not (_SENTENCE_END.search(line) and words >= 14)


def _is_wrapped(block: list[str]) -> bool:
    """A hard-wrapped paragraph: lines continue one another's sentences."""
    if len(block) < 2:
        return False
    for first, second in itertools.pairwise(block):
        if not re.search(r"[.!?:\"”]$", first) and second[:1].islower():
            return True
    return len(block) >= 3 and max(len(line) for line in block) >= 60


def _is_caption(line: str, kicker: str | None) -> bool:
    if re.match(r"^(?:photo|image|file photo|picture|caption|pictured)\b", line, re.I):
        return True
    if labels().caption.match(line) or _is_script_caption(line, kicker):
        return True
    if line.startswith("(") and line.endswith(")"):
        return True
    if kicker is None or _SENTENCE_END.search(line):
        return False
    # A caption under a kicker is a title-case noun phrase about the same
    # person ("Iran Deputy Foreign Minister Abbas Araghchi").
    small = {"of", "the", "and", "for", "in", "on", "at", "to", "a", "an", "de", "al"}
    words = [w for w in re.findall(r"[\w'’-]+", line) if w.lower() not in small]
    if not words or not all(w[:1].isupper() or w[:1].isdigit() for w in words):
        return False
    kicker_words = {w.lower() for w in re.findall(r"[\w'’-]+", kicker)} - small
    return len(kicker_words & {w.lower() for w in words}) >= 2


def _is_script_caption(line: str, kicker: str | None) -> bool:
    """A caption under a kicker in a script whose nouns are not capitalised.

    Russian, Persian, Arabic and Armenian captions repeat the kicker's words
    ("Министр иностранных дел России Сергей Лавров" under "Министр
    иностранных дел России:") without the title case English captions have.
    """
    if kicker is None or _SENTENCE_END.search(line) or len(line.split()) > 16:
        return False
    if not any(c.isalpha() and ord(c) > 0x24F for c in line):
        return False
    return len(set(tokens(kicker)) & set(tokens(line))) >= 2


def _is_portrait_caption(line: str, lead: str | None) -> bool:
    """A photo caption under the headline in a cased non-Latin script: a title and a name.

    "Министр иностранных дел России Сергей Лавров": a noun phrase without final
    punctuation ending in a capitalised first name and surname, the person the
    lead speaks of (either name as a prefix of a lead word, so that "Лаврова"
    counts for "Лавров").
    """
    words = line.split()
    if not lead or not 3 <= len(words) <= 12 or _SENTENCE_END.search(line):
        return False
    if any(c in line for c in ':;«»"“”') or not any(c.isalpha() and ord(c) > 0x24F for c in line):
        return False
    name = words[-2:]
    if not all(w.isalpha() and w[:1].isupper() and not w.isupper() for w in name):
        return False
    lead_words = set(tokens(lead))
    return all(any(t.startswith(tokens(w)[0][:4]) for t in lead_words) for w in name if tokens(w))


def _headline_quote(paragraph: str) -> str | None:
    """The lead's first quotation that reads as a headline, with its quotation marks."""
    found = sorted(
        (m.start(), m.group("q").strip(), marks)
        for pattern, marks in ((_QUOTE, ("\u201c", "\u201d")), (_GUILLEMET_QUOTE, ("«", "»")))
        for m in pattern.finditer(paragraph)
    )
    for _, quote, (opening, closing) in found:
        first = quote[:1]
        # Capitalised, or in a script without case (Arabic, Persian).
        if 4 <= len(quote.split()) <= 25 and (
            first.isupper() or (first.isalpha() and not first.islower())
        ):
            return f"{opening}{quote.rstrip('.')}{closing}"
    return None


def _first_sentence(paragraph: str, max_words: int) -> str | None:
    sentences = _sentences(paragraph)
    if not sentences:
        return None
    first = sentences[0].strip()
    if len(first.split()) > max_words:
        return None
    return first.rstrip(".")


@dataclass(frozen=True, slots=True)
class _Head:
    title: str | None
    extra: tuple[str, ...]


def _title_from_head(head: list[tuple[str, bool]], lead: str | None) -> _Head:
    """Choose a headline from the head lines (text, is_marked_heading)."""
    if not head:
        return _Head(None, ())
    marked = [i for i, (_, is_heading) in enumerate(head) if is_heading]
    kicker: str | None = None
    start = 0
    first = head[0][0]
    if first.endswith(":") and len(first.split()) <= 10 and len(head) >= 1:
        kicker = first[:-1].strip()
        start = 1
    rest = head[start:]
    if marked:
        index = marked[0]
        title = head[index][0]
        if kicker and index == 1:
            title = f"{kicker}: {title}"
        extra = tuple(t for i, (t, _) in enumerate(head) if i != index and i >= start)
        return _Head(title, tuple(e for e in extra if not _is_caption(e, kicker)))
    candidates = [
        t
        for i, (t, _) in enumerate(rest)
        if not _is_caption(t, kicker) and not (i and _is_portrait_caption(t, lead))
    ]
    # A section label above the headline ("SHIPPING", "WORLD NEWS").
    while len(candidates) > 1 and candidates[0].isupper() and len(candidates[0].split()) <= 3:
        candidates = candidates[1:]
    if kicker:
        if candidates:
            return _Head(f"{kicker}: {candidates[0]}", tuple(candidates[1:]))
        # Kicker above a photo caption: the headline itself is missing. News
        # headlines of this style read "Speaker: quote", so complete it from
        # the lead's first quotation, else its first (short) sentence.
        quote = _headline_quote(lead or "")
        if quote:
            return _Head(f"{kicker}: {quote}", ())
        sentence = _first_sentence(lead or "", 20)
        if sentence:
            return _Head(f"{kicker}: {sentence}", ())
        return _Head(kicker, ())
    if candidates:
        return _Head(candidates[0], tuple(candidates[1:]))
    return _Head(None, ())


def _headline_case(title: str) -> str:
    """Headlines carry no full stop: drop one (not an ellipsis or an initial)."""
    title = title.strip()
    if title.endswith(".") and not title.endswith("..") and not re.search(r"\b[A-Z]\.$", title):
        title = title[:-1].rstrip()
    return title


def parse_text_article(
    text: str,
    *,
    relpath: str,
    identity: str,
    mtime: datetime,
    now: datetime,
) -> tuple[RawEntry, tuple[str, ...]]:
    """Read one plain-text article.

    Args:
        text: the decoded text (LF line ends, no control characters).
        relpath: the file's path relative to the seeds folder (for messages
            and a fallback title).
        identity: the entry identity to give the item.
        mtime: the file's modification time (the date of last resort).
        now: the current time; no date may be later.

    Returns:
        The entry and one-line warnings (bad dates, dates in the future).

    Raises:
        ValueError: the text has no usable content (the caller names the file).
    """
    warnings: list[str] = []
    lines, marked = _mark_headings(text)
    lines, related = extract_related(lines)
    meta, kept = _take_metadata(lines, marked)
    for bad in meta.bad_dates:
        warnings.append(f"date not understood: {bad!r}")

    blocks = _blocks(kept)
    if not blocks:
        raise ValueError("no text content")
    head, body_blocks = _split_head(blocks, marked)
    head = _take_head_date(head, meta)
    paragraphs = _paragraphs(body_blocks, marked)
    dateline, dateline_date, paragraphs, head = _find_dateline(paragraphs, head, now)
    paragraphs = _cleaned(paragraphs)

    lead_text = next((value for kind, value in paragraphs if kind == "p"), None)
    title, paragraphs = _choose_title(head, lead_text, paragraphs, relpath)
    published, updated, date_is_guess = _dates(meta, dateline_date, mtime, now, warnings)

    html_blocks: list[tuple[str, str | list[str]]] = [
        (kind, value.split("\n") if kind == "ul" else value) for kind, value in paragraphs
    ]
    content = paragraphs_to_html(html_blocks)
    summary = summarise(lead_text) if lead_text else (title or "")
    return RawEntry(
        identity=identity,
        title=title,
        link=meta.link,
        content=content or None,
        content_is_html=True,
        summary=summary or None,
        summary_is_html=False,
        published=published,
        updated=updated,
        authors=tuple(meta.authors),
        tags=tuple(meta.tags),
        dateline=dateline,
        related=tuple(related),
        base_url=meta.link,
        date_is_guess=date_is_guess,
    ), tuple(warnings)


def _mark_headings(text: str) -> tuple[list[str], set[str]]:
    """The text's lines, normalised; Setext and ATX headings marked, their underlines dropped.

    Returns:
        The lines, and the text of the heading lines.
    """
    raw_lines = [normalise_line(line) for line in text.split("\n")]
    lines: list[str] = []
    headings: set[int] = set()
    for i, line in enumerate(raw_lines):
        if _SETEXT.match(line) and lines and lines[-1] and i > 0 and raw_lines[i - 1]:
            headings.add(len(lines) - 1)
            continue
        m = _ATX.match(line)
        if m:
            headings.add(len(lines))
            lines.append(m.group("text"))
            continue
        lines.append(line)
    return lines, {lines[i] for i in headings}


def _take_metadata(lines: list[str], marked: set[str]) -> tuple[Metadata, list[str]]:
    """Metadata lines (author, date, tags...) and noise read out; each leaves a blank line."""
    meta = Metadata()
    kept: list[str] = []
    for line in lines:
        if line and line not in marked and (_metadata_line(line, meta) or _is_noise(line)):
            kept.append("")
            continue
        kept.append(line)
    return meta, kept


def _split_head(
    blocks: list[list[str]], marked: set[str]
) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    """Head: leading short lines (kicker, headline, caption, date line); body:
    from the first paragraph-like block or dateline on.

    Returns:
        The head lines (each with whether it is a heading) and the body's blocks.
    """
    head: list[tuple[str, bool]] = []
    body_blocks: list[list[str]] = []
    for block in blocks:
        if body_blocks:
            body_blocks.append(block)
            continue
        if all(_head_like(line) for line in block) and not _is_wrapped(block):
            head.extend((line, line in marked) for line in block)
            continue
        # A one-line-per-paragraph block may start with head lines.
        lead = 0
        while (
            lead < len(block) - 1
            and _head_like(block[lead])
            and len(block[lead + 1]) > 100
            and not _is_wrapped(block[lead : lead + 2])
        ):
            head.append((block[lead], block[lead] in marked))
            lead += 1
        body_blocks.append(block[lead:])
    return head, body_blocks


def _take_head_date(head: list[tuple[str, bool]], meta: Metadata) -> list[tuple[str, bool]]:
    """A standalone date line in the head is the publication date: moved into ``meta``."""
    head_kept: list[tuple[str, bool]] = []
    for line, is_heading in head:
        date = parse_date(line) if not is_heading and len(line.split()) <= 8 else None
        if date is not None and re.search(r"\d{4}", line):
            meta.published = meta.published or date
            continue
        head_kept.append((line, is_heading))
    return head_kept


def _paragraphs(body_blocks: list[list[str]], marked: set[str]) -> list[tuple[str, str]]:
    """The body as (kind, text): ``p`` paragraphs, ``ul`` bullet lists, ``h`` headings."""
    paragraphs: list[tuple[str, str]] = []
    for block in body_blocks:
        for para in _split_block(block):
            if all(_BULLET.match(line) for line in para) and len(para) > 1:
                paragraphs.append(("ul", "\n".join(_BULLET.sub("", line) for line in para)))
            elif len(para) == 1 and para[0] in marked:
                paragraphs.append(("h", para[0]))
            else:
                paragraphs.append(("p", _join_lines(para)))
    return paragraphs


def _find_dateline(
    paragraphs: list[tuple[str, str]], head: list[tuple[str, bool]], now: datetime
) -> tuple[Dateline | None, datetime | None, list[tuple[str, str]], list[tuple[str, bool]]]:
    """The dateline, opening the first paragraph or alone as the head's last line.

    Returns:
        The dateline, the date it gives, the paragraphs and the head without it.
    """
    dateline: Dateline | None = None
    dateline_date: datetime | None = None
    first_p = next((i for i, (kind, _) in enumerate(paragraphs) if kind == "p"), None)
    if first_p is not None:
        dateline, rest, dl_date = split_dateline(paragraphs[first_p][1])
        if dateline is not None:
            paragraphs = list(paragraphs)
            paragraphs[first_p] = ("p", rest)
            if dl_date:
                dateline_date = _dateline_date(dl_date, now) or _table_dateline_date(dl_date, now)
    if dateline is None and head:
        # A dateline alone on its own line: "YEREVAN, Armenia (AP) —".
        m = re.match(
            r"^(?P<place>[A-Z][\w'’., -]{1,40}?)\s*\((?P<agency>[^)]{1,24})\)\s*[-–—:]?$",
            head[-1][0],
        )
        if m:
            dateline = Dateline(
                place=_place_case(m.group("place").strip(" ,")), agency=m.group("agency")
            )
            head = head[:-1]
    return dateline, dateline_date, paragraphs, head


def _cleaned(paragraphs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Breadcrumbs glued to a paragraph's start cut, text fixed, empty paragraphs dropped."""
    paragraphs = [
        (kind, _strip_glued_crumb(value) if kind == "p" else value) for kind, value in paragraphs
    ]
    return [(kind, _fix_text(value)) for kind, value in paragraphs if value.strip()]


def _choose_title(
    head: list[tuple[str, bool]],
    lead_text: str | None,
    paragraphs: list[tuple[str, str]],
    relpath: str,
) -> tuple[str | None, list[tuple[str, str]]]:
    """The headline from the head, else the lead's first sentence, else the file name.

    Returns:
        The title, and the paragraphs with any standfirst under the headline first.

    Raises:
        ValueError: neither a title nor any paragraph.
    """
    chosen = _title_from_head(head, lead_text)
    title = chosen.title
    if chosen.extra:
        # A standfirst under the headline is part of the story, not noise.
        decks = [("p", e) for e in chosen.extra if len(e.split()) >= 6]
        paragraphs = decks + paragraphs
    if title is None and lead_text:
        title = _first_sentence(lead_text, 25) or humanise_filename(relpath)
        if title is None:
            sentences = _sentences(lead_text)
            title = sentences[0].rstrip(".") if sentences else None
    if title is None:
        title = humanise_filename(relpath)
    if not paragraphs and not title:
        raise ValueError("no usable text content")
    title = _headline_case(_fix_text(title)) if title else None
    return title, paragraphs


def _dates(
    meta: Metadata,
    dateline_date: datetime | None,
    mtime: datetime,
    now: datetime,
    warnings: list[str],
) -> tuple[datetime, datetime | None, bool]:
    """Published (metadata, else the dateline's date, else the file's mtime), updated, guessed.

    A date later than ``now`` is ignored with a warning.
    """
    claimed = meta.published or dateline_date
    published = not_in_future(claimed, now)
    if claimed is not None and published is None:
        warnings.append(f"date {claimed.isoformat()} is in the future; ignored")
    updated = not_in_future(meta.updated, now)
    date_is_guess = False
    if published is None:
        published = min(mtime, now)
        date_is_guess = True
    return published, updated, date_is_guess
