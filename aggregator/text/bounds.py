"""Caps on what one document may cost before the sanitiser sees it (pure).

html5ever, under nh3, checks the stack of open elements for most start and
end tags, so its time grows with nesting depth times size: 20,000 nested
``<div>`` cost a second, 100,000 nearly a minute. No real article comes near
that, so a hostile one is cut down here first: each field is capped in size,
markup nested deeper than :data:`MAX_DEPTH` is flattened (the tags go, their
text stays) and a document keeps at most :data:`MAX_ENTRIES` entries.

Fields with at most :data:`UNCHECKED_MARKUP` ``<`` characters pass untouched
(their depth, and so their cost, is bounded by that count). Longer ones are
re-serialised from our own tokenisation, which follows the HTML tokeniser's
states (quoted attributes, comments, raw text elements), so html5ever sees
the same tags as we counted and cannot be led deeper than we allowed.
Comments, doctypes and CDATA sections are dropped on the way (nh3 drops them
too); for ordinary markup the sanitised result is the same as without us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from aggregator.model import ParsedDocument, RawEntry

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_FIELD_CHARS",
    "MAX_PAGE_BYTES",
    "MAX_SHORT_CHARS",
    "UNCHECKED_MARKUP",
    "BoundedHtml",
    "bound_document",
    "bound_html",
    "page_refusal",
]

#: Deepest element nesting kept. Real articles stay under ~40 levels and
#: threaded comments quoted level upon level reach ~150; libxml2 stops parsing
#: at 256 and Chromium flattens below 512. Beyond this, tags are dropped and
#: their text kept, which keeps html5ever's stack walks short.
MAX_DEPTH = 256
#: Longest content or summary field (characters). A 100,000-word article is
#: about 700,000 characters of HTML; the fetcher's body cap is 10 MiB.
MAX_FIELD_CHARS = 1_048_576
#: Longest title, author, tag, link or id (characters): one line of text.
MAX_SHORT_CHARS = 4_096
#: Most entries read from one document, in document order (feeds list the
#: newest first). Podcast and archive feeds reach a few hundred.
MAX_ENTRIES = 1_000
#: Largest web page read for its article (``full_content``). lxml's time and
#: memory grow with the page: a 10 MB page took 39 s and 590 MB to extract.
#: News pages, scripts included, stay under 2 MB; at this limit extraction
#: takes about 3 s (measured on a 4 MB page of ordinary markup).
MAX_PAGE_BYTES = 3 * 2**20
#: Most attributes on one element of a page. lxml's HTML parser is quadratic
#: in them: 166,000 on one tag ran past 300 s. Real tags carry a few dozen.
MAX_ATTRIBUTES = 256
#: Fields with at most this many ``<`` are passed as they are: they cannot
#: nest deeper than this, which html5ever handles in about a millisecond.
UNCHECKED_MARKUP = 1_024

_WS = "\t\n\f\r "
# The HTML tokeniser's attribute states, as one atomic (non-backtracking)
# pattern: quotes only open a value after `=`, a quoted value runs to its
# closing quote whatever it holds, an unterminated one runs to the end of the
# input (so the pattern fails, as the tag does: html5ever drops it).
_ATTRS = (
    rf"(?>(?:[{_WS}/]++"
    rf"|[^{_WS}/>][^{_WS}/>=]*+"
    rf"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+\"|'[^']*+'|[^{_WS}>\"'][^{_WS}>]*+|(?=>))"
    rf"|(?![{_WS}]*+=)))*+)"
)
_TAG_RE = re.compile(rf"<(/?)([A-Za-z][^{_WS}/>]*+){_ATTRS}>")
# One attribute of a tag matched by _TAG_RE (its name, and its value if any).
_ATTR_RE = re.compile(
    rf"[^{_WS}/>][^{_WS}/>=]*+"
    rf"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+\"|'[^']*+'|[^{_WS}>\"'][^{_WS}>]*+))?"
)
_TAG_START_RE = re.compile(r"</?[A-Za-z]")
_COMMENT_RE = re.compile(r"<!--(?:-?>|[\s\S]*?--!?>|[\s\S]*)")
_CDATA_RE = re.compile(r"<!\[CDATA\[([\s\S]*?)(?:\]\]>|$)")
_BOGUS_RE = re.compile(r"(?:<[!?]|</[^A-Za-z>])[^>]*+>?")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
        "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip
# Their content is text to the tokeniser, not markup. All but `title` are
# dropped with their content by the sanitiser; `title`'s text is kept.
_RAW_TEXT = frozenset(
    {
        "iframe", "noembed", "noframes", "noscript", "script", "style", "textarea", "title",
        "xmp",
    }
)  # fmt: skip
_FOREIGN = frozenset({"svg", "math"})


@dataclass(frozen=True, slots=True)
class BoundedHtml:
    """An HTML field after :func:`bound_html`."""

    html: str
    #: the field's length before cutting, when it was cut
    cut_from: int | None = None
    #: how deep the markup went, when tags below :data:`MAX_DEPTH` were dropped
    flattened_from: int | None = None


def _escape_text(text: str) -> str:
    return text.replace("<", "&lt;")


_RAW_TEXT_END = {name: re.compile(rf"</{name}[{_WS}/>]", re.IGNORECASE) for name in _RAW_TEXT}


def _raw_text_end(html: str, name: str, start: int) -> int:
    """Where a raw text element's content ends: its end tag, else the input's end."""
    found = _RAW_TEXT_END[name].search(html, start)
    return found.start() if found else len(html)


def _reserialise(html: str) -> tuple[str, int, int]:
    """Our tokens of ``html`` as unambiguous markup, flattened below :data:`MAX_DEPTH`.

    Returns:
        The markup, the deepest nesting seen and the most attributes on one tag.
    """
    out: list[str] = []
    stack: list[str] = []
    emitted: list[bool] = []
    deepest = 0
    most_attributes = 0
    pos, end = 0, len(html)
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0:
            out.append(_escape_text(html[pos:]))
            break
        if lt > pos:
            out.append(_escape_text(html[pos:lt]))
        pos = lt
        if _TAG_START_RE.match(html, pos):
            tag = _TAG_RE.match(html, pos)
            if tag is None:
                break  # the tag runs to the end of the input: html5ever drops it
            token = tag.group(0)
            pos = tag.end()
            name = tag.group(2).translate(_ASCII_LOWER)
            if len(token) > 2 * most_attributes + len(name) + 2:  # could hold more than seen
                attributes = token[len(name) + 1 : -1]
                most_attributes = max(
                    most_attributes, sum(1 for _ in _ATTR_RE.finditer(attributes))
                )
            if tag.group(1):  # end tag
                if stack and stack[-1] == name:
                    stack.pop()
                    if emitted.pop():
                        out.append(token)
                elif len(stack) < MAX_DEPTH:
                    out.append(token)  # an end tag can only make html5ever's tree shallower
                continue
            if name in _RAW_TEXT:
                close = _raw_text_end(html, name, pos)
                if name == "title":
                    out.append(_escape_text(html[pos:close]))
                after = _TAG_RE.match(html, close)
                pos = after.end() if after else end
                continue
            if name == "plaintext":
                out.append(_escape_text(html[pos:]))
                break
            if name in _VOID:
                if len(stack) < MAX_DEPTH:
                    out.append(token)
                continue
            keep = len(stack) < MAX_DEPTH
            stack.append(name)
            emitted.append(keep)
            deepest = max(deepest, len(stack))
            if keep:
                out.append(token)
            continue
        if html.startswith("<!--", pos):
            pos = _COMMENT_RE.match(html, pos).end()  # type: ignore[union-attr]
            continue
        if html.startswith("<![CDATA[", pos) and _FOREIGN.intersection(stack):
            cdata = _CDATA_RE.match(html, pos)
            assert cdata is not None  # the pattern matches any text after the prefix
            out.append(cdata.group(1).replace("&", "&amp;").replace("<", "&lt;"))
            pos = cdata.end()
            continue
        if html.startswith("</>", pos):
            pos += 3
            continue
        bogus = _BOGUS_RE.match(html, pos)
        if bogus is not None:
            pos = bogus.end()
            continue
        out.append("&lt;")  # a `<` that starts nothing is text
        pos += 1
    return "".join(out), deepest, most_attributes


def page_refusal(html: str) -> str | None:
    """Why a web page is too costly to parse for its article, or None when it is not.

    A linear pass of our tokeniser (no tree) measures what makes lxml slow:
    nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_ATTRIBUTES`
    attributes on one tag. Such a page keeps the feed's text instead.

    Args:
        html: the decoded page.

    Returns:
        A reason, naming the measure and its limit, or None.
    """
    _, deepest, most_attributes = _reserialise(html)
    if most_attributes > MAX_ATTRIBUTES:
        return f"a tag has {most_attributes:,} attributes, over the limit of {MAX_ATTRIBUTES}"
    if deepest > MAX_DEPTH:
        return f"markup nests {deepest:,} elements deep, over the limit of {MAX_DEPTH}"
    return None


def bound_html(html: str) -> BoundedHtml:
    """Cap an untrusted HTML field's size and nesting depth.

    Args:
        html: an HTML fragment from a document.

    Returns:
        The bounded fragment (``html`` itself when no cap applies) and what
        was cut or flattened.
    """
    cut_from = None
    if len(html) > MAX_FIELD_CHARS:
        cut_from = len(html)
        html = html[:MAX_FIELD_CHARS]
    if html.count("<") <= UNCHECKED_MARKUP:
        return BoundedHtml(html, cut_from=cut_from)
    bounded, deepest, _ = _reserialise(html)
    return BoundedHtml(
        bounded, cut_from=cut_from, flattened_from=deepest if deepest > MAX_DEPTH else None
    )


def _cap_short(value: str | None, label: str, notes: list[str]) -> str | None:
    if value is None or len(value) <= MAX_SHORT_CHARS:
        return value
    notes.append(f"{label} is {len(value):,} characters, cut to {MAX_SHORT_CHARS:,}")
    return value[:MAX_SHORT_CHARS]


def _cap_field(value: str | None, is_html: bool, label: str, notes: list[str]) -> str | None:
    if value is None:
        return None
    if not is_html:
        if len(value) <= MAX_FIELD_CHARS:
            return value
        notes.append(f"{label} is {len(value):,} characters, cut to {MAX_FIELD_CHARS:,}")
        return value[:MAX_FIELD_CHARS]
    bounded = bound_html(value)
    if bounded.cut_from is not None:
        notes.append(f"{label} is {bounded.cut_from:,} characters, cut to {MAX_FIELD_CHARS:,}")
    if bounded.flattened_from is not None:
        notes.append(
            f"{label} nests {bounded.flattened_from:,} elements deep, "
            f"markup below depth {MAX_DEPTH} flattened"
        )
    return bounded.html


def _entry_name(raw: RawEntry, position: int) -> str:
    label = raw.identity or raw.link or raw.title or ""
    label = " ".join(label[:200].split())
    if len(label) > 80:
        label = label[:79] + "…"
    return f"entry {position} ({label})" if label else f"entry {position}"


def _bound_entry(raw: RawEntry, position: int) -> tuple[RawEntry, str | None]:
    notes: list[str] = []
    identity = _cap_short(raw.identity, "id", notes)
    title = _cap_short(raw.title, "title", notes)
    link = _cap_short(raw.link, "link", notes)
    content = _cap_field(raw.content, raw.content_is_html, "content", notes)
    summary = _cap_field(raw.summary, raw.summary_is_html, "summary", notes)
    authors = tuple(a for a in (_cap_short(a, "author", notes) for a in raw.authors) if a)
    tags = tuple(t for t in (_cap_short(t, "tag", notes) for t in raw.tags) if t)
    if not notes:
        return raw, None  # most entries: no copy made
    bounded = replace(
        raw,
        identity=identity,
        title=title,
        link=link,
        content=content,
        summary=summary,
        authors=authors,
        tags=tags,
    )
    return bounded, f"{_entry_name(raw, position)}: {'; '.join(notes)}"


def bound_document(doc: ParsedDocument) -> ParsedDocument:
    """Apply the caps to a parsed document, noting each in its warnings.

    Args:
        doc: a parser's result.

    Returns:
        ``doc`` itself when nothing was over a cap; else the capped document
        with one warning per capped entry (naming it) and one for dropped
        entries.
    """
    warnings = list(doc.warnings)
    entries: list[RawEntry] = []
    for position, raw in enumerate(doc.entries[:MAX_ENTRIES], start=1):
        bounded, note = _bound_entry(raw, position)
        entries.append(bounded)
        if note:
            warnings.append(note)
    if len(doc.entries) > MAX_ENTRIES:
        dropped = len(doc.entries) - MAX_ENTRIES
        warnings.append(
            f"document has {len(doc.entries):,} entries; the {dropped:,} after "
            f"the first {MAX_ENTRIES:,} were dropped"
        )
    if len(warnings) == len(doc.warnings):
        return doc
    return replace(doc, entries=tuple(entries), warnings=tuple(warnings))
