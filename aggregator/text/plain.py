"""Text primitives shared by :mod:`aggregator.normalise` and :mod:`aggregator.topics`.

A private leaf module (stdlib only, imports nothing internal) so that both pure
modules can use the same tokeniser and HTML-to-text conversion without importing
each other: ``normalise`` needs :func:`tokens` for text fingerprints, ``topics``
needs :func:`html_to_text` to index an item's content. The public names are
re-exported by those two modules; import them from there.
"""

# Non-Latin letters, typographic quotes and dashes here are deliberate.
# ruff: noqa: RUF003

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import re
import unicodedata
from collections.abc import Sequence
from html.parser import HTMLParser

__all__ = [
    "FINGERPRINT_MIN_TOKENS",
    "MAX_MARKS",
    "SCRIPT_FOLDING",
    "cached_tokens",
    "cap_marks",
    "fingerprint_tokens",
    "html_to_text",
    "tokens",
]

# A token is a run of letters and digits; `_` counts as a separator, like any
# punctuation, so `foo_bar` and `foo-bar` tokenise the same way.
_TOKEN_RE = re.compile(r"[^\W_]+")


#: Combining marks kept in a row (the Stream-Safe Text Format's limit, UAX #15).
#: Unicode normalisation puts a run of marks in canonical order in time
#: quadratic in its length: 156 KB of alternating marks took 5.9 s to normalise.
MAX_MARKS = 30
#: the last code point with a non-zero combining class is U+1E94A
_LAST_MARK = 0x1E950


@functools.cache
def _mark_run() -> re.Pattern[str]:
    """A run of more than :data:`MAX_MARKS` non-starters (built once per process, ~0.1 s)."""
    return _run_of(_mark_ranges())


@functools.cache
def _bmp_mark_run() -> re.Pattern[str]:
    """:func:`_mark_run` of the marks below U+10000 only.

    A class holding characters beyond U+FFFF is matched by a search through
    every range of it at each character (about 190 ranges, 0.2 ms for 500
    characters of Cyrillic); one within the BMP is a table lookup.
    """
    return _run_of([(a, b) for a, b in _mark_ranges() if b <= 0xFFFF])


def _run_of(ranges: list[tuple[int, int]]) -> re.Pattern[str]:
    members = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{members}]{{{MAX_MARKS + 1},}}")


@functools.cache
def _mark_ranges() -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for cp in range(0x300, _LAST_MARK):
        if unicodedata.combining(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return ranges


# A character beyond the BMP (a mark there, an emoji, a rare ideograph).
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def cap_marks(text: str) -> str:
    """``text`` with each run of combining marks cut to :data:`MAX_MARKS`.

    Call it before any Unicode normalisation of text from a source: no
    writing system stacks more than a handful of marks on one letter, and
    beyond 30 normalisation's cost grows with the square of the run.
    """
    if text.isascii():
        return text
    # A long run is either all BMP marks or holds a character beyond the BMP:
    # without either (nearly all text), there is nothing to cut.
    if _bmp_mark_run().search(text) is None and _ASTRAL_RE.search(text) is None:
        return text
    return _mark_run().sub(lambda m: m.group()[:MAX_MARKS], text)


#: Where the marks are: below U+20000, and the variation selectors of plane 14.
#: Planes 2, 3 and 15-16 are ideographs and private use, and hold none
#: (``tests/test_text.py`` checks all of Unicode).
_MARK_PLANES = ((0x300, 0x20000), (0xE0000, 0xE1000))


@functools.cache
def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Every combining mark (categories Mn, Mc, Me): within the BMP, and all of them.

    Built once per process (~20 ms). A class holding characters beyond U+FFFF
    is searched range by range at each character, so text without them uses
    the BMP one, a table lookup.
    """
    ranges: list[tuple[int, int]] = []
    for start, stop in _MARK_PLANES:
        for cp in range(start, stop):
            if unicodedata.category(chr(cp))[0] == "M":
                if ranges and ranges[-1][1] == cp - 1:
                    ranges[-1] = (ranges[-1][0], cp)
                else:
                    ranges.append((cp, cp))

    def one_of(chosen: list[tuple[int, int]]) -> re.Pattern[str]:
        members = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in chosen)
        return re.compile(f"[{members}]+")

    return one_of([r for r in ranges if r[1] <= 0xFFFF]), one_of(ranges)


def _strip_marks(text: str) -> str:
    """Drop every combining mark (categories Mn, Mc, Me).

    Dropping spacing marks too (Mc: Devanagari vowel signs...) loses a little
    precision in those scripts but keeps each word one token instead of
    splitting it at every vowel sign; query and text lose the same marks, so
    matching stays consistent.
    """
    bmp, every = _marks()
    return (every if _ASTRAL_RE.search(text) else bmp).sub("", text)


def tokens(text: str) -> list[str]:
    """Split ``text`` into case- and accent-insensitive word tokens.

    Script folding (:data:`SCRIPT_FOLDING`: zero-width non-joiners split like
    spaces, zero-width joiners go, tatweel,
    Arabic and Persian letter variants, dotless i, Arabic-Indic digits), NFKD
    decomposition, combining marks removed (Cyrillic "й" keeps its breve),
    case folded (``ß`` → ``ss``), then split on anything that is not a letter
    or digit. Hyphens, apostrophes
    and other punctuation separate tokens: ``"Nagorno-Karabakh"`` →
    ``["nagorno", "karabakh"]``, ``"Iran's"`` → ``["iran", "s"]``.

    Args:
        text: any text (plain text: strip HTML first).

    Returns:
        The tokens in order; empty for text without letters or digits.
    """
    if text.isascii():
        # Fast path: ASCII has no marks and no compatibility forms.
        return _TOKEN_RE.findall(text.lower())
    # Whitespace separates tokens anyway; splitting on it first lets ASCII
    # words take the fast path and caches the slow path per distinct word.
    out: list[str] = []
    for chunk in text.split():
        if chunk.isascii():
            out.extend(_TOKEN_RE.findall(chunk.lower()))
        else:
            out.extend(_unicode_tokens(chunk))
    return out


@functools.lru_cache(maxsize=8)
def cached_tokens(text: str) -> tuple[str, ...]:
    """:func:`tokens` of one of the last few texts, as a tuple.

    An entry's body is tokenised for its topic document, its text
    fingerprint and its near-duplicate sketch, one after the other.
    """
    return tuple(tokens(text))


#: Fewer tokens than this and a text is too short to identify a story.
FINGERPRINT_MIN_TOKENS = 12


def fingerprint_tokens(words: Sequence[str]) -> str | None:
    """A text's fingerprint from its :func:`tokens`: sha256 of them joined, or None when too few."""
    if len(words) < FINGERPRINT_MIN_TOKENS:
        return None
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


#: Per-script folding, applied before decomposition: letters and marks that
#: writers use interchangeably, so a query and a text spelled either way meet.
#: Decomposing and dropping marks then folds the rest: Arabic hamza carriers
#: (أ إ آ → ا, ؤ → و, ئ → ي), harakat, Cyrillic ё → е, Turkish İ → i.
SCRIPT_FOLDING: dict[str, str] = {
    # Zero-width non-joiner: Persian writers type "قره‌باغ" or "قره باغ" for the
    # same words, so it separates tokens as a space does.
    "\u200c": " ",
    # Zero-width joiner only shapes letters (and emoji): "نا\u200dمه" is "نامه".
    "\u200d": "",
    # Tatweel (kashida) only stretches a word: "الـعـربـيـة" is "العربية".
    "\u0640": "",
    # Alef wasla is an alef; alef maksura and Persian yeh are yeh; keheh is kaf.
    "\u0671": "\u0627",
    "\u0649": "\u064a",
    "\u06cc": "\u064a",
    "\u06a9": "\u0643",
    # Persian heh with hamza above (ezafe) is heh.
    "\u06c0": "\u0647",
    # Turkish and Azerbaijani dotless i: "ILIK", "ılık" and "Ilık" are one word.
    "\u0131": "i",
    # Arabic-Indic and Persian (Extended Arabic-Indic) digits are digits.
    **{chr(0x0660 + d): str(d) for d in range(10)},
    **{chr(0x06F0 + d): str(d) for d in range(10)},
}
_SCRIPT_TABLE = str.maketrans(SCRIPT_FOLDING)
# Most words hold none of them: a search is a tenth of a translate's cost.
_SCRIPT_RE = re.compile("[" + "".join(re.escape(c) for c in SCRIPT_FOLDING) + "]")
#: Non-ASCII words whose tokens each process keeps (~350 bytes each when full).
#: A word's tokens cost ~1.5 us to work out; on a Zipfian vocabulary of 200,000
#: word forms, 4,096 of them answer ~47 % of words (benchmarks/bench_tokens.py).
TOKEN_CACHE = 4096
# "й" is a letter of its own, not "и" with an accent: keep its breve.
_SHORT_I = ("\u0438\u0306", "\u0439")


@functools.lru_cache(maxsize=TOKEN_CACHE)
def _unicode_tokens(chunk: str) -> tuple[str, ...]:
    if _SCRIPT_RE.search(chunk):
        chunk = chunk.translate(_SCRIPT_TABLE)
    folded = unicodedata.normalize("NFKD", cap_marks(chunk)).casefold()
    # Case folding can produce new composed forms (e.g. U+0130), so decompose again.
    folded = unicodedata.normalize("NFKD", folded).replace(*_SHORT_I)
    return tuple(_TOKEN_RE.findall(_strip_marks(folded)))


# Elements whose boundaries are paragraph breaks in plain text.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "details", "div", "dl",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hgroup", "hr", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "ul",
    }
)  # fmt: skip
# Elements whose boundaries are line breaks.
_LINE = frozenset({"br", "dd", "dt", "li", "tr"})
# Cell boundaries within a row are spaces.
_CELL = frozenset({"td", "th"})
# Elements whose text is never shown to a reader.
_HIDDEN = frozenset({"script", "style", "template", "noscript", "head", "title"})

_PARAGRAPH = "\x00P"
_NEWLINE = "\x00N"
_EXTRA_BREAKS_RE = re.compile(r"\n{3,}")
# A run of break markers (with any whitespace between) is one break: the
# biggest of them.
_BREAKS_RE = re.compile(r"\x00[PN](?:\s*\x00[PN])*")


def _join_breaks(match: re.Match[str]) -> str:
    return "\n\n" if _PARAGRAPH in match.group(0) else "\n"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._boundary(tag, opening=True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # `<br/>`, `<hr/>`: a boundary, and no content to hide.
        if tag in _BLOCK:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINE:
            self.parts.append(_NEWLINE)

    def handle_endtag(self, tag: str) -> None:
        self._boundary(tag, opening=False)

    def _boundary(self, tag: str, *, opening: bool) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden + (1 if opening else -1))
        elif tag in _BLOCK:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINE:
            self.parts.append(_NEWLINE)
        elif tag in _CELL:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            # NUL is our break marker; it is never valid text anyway.
            self.parts.append(data.replace("\x00", ""))


@functools.lru_cache(maxsize=256)
def html_to_text(html: str) -> str:
    """Convert an HTML fragment to plain text.

    Cached for the last few fragments: an item's content is converted for
    its content key, its topic document and its near-duplicate sketch, one
    after the other.

    Entities are decoded; script/style content is dropped; block elements
    become paragraph breaks (a blank line), ``<br>`` and list items become line
    breaks, and other whitespace runs collapse to one space. Lines are
    stripped and the result has no leading or trailing whitespace.

    Args:
        html: an HTML fragment (need not be well-formed).

    Returns:
        The plain text.
    """
    if "<" not in html and "&" not in html:
        return _tidy(html.replace("\x00", ""))
    simple = _simple_text(html)
    if simple is not None:
        return _tidy(simple)
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _tidy("".join(parser.parts))


# HTML of text, plain start tags (double-quoted attributes without `<` or `>`)
# and end tags, as a sanitiser writes it: what :class:`_TextExtractor` reads
# tag by tag, with each run of text unescaped, so a scan gives the same parts.
# Each part is where the last one ends, so the scan is linear, matched or not.
_SIMPLE_HTML_RE = re.compile(
    r"[^<]*+(?:(?:</[A-Za-z][A-Za-z0-9]*+"
    r'|<[A-Za-z][A-Za-z0-9]*+(?: [A-Za-z_:][-A-Za-z0-9_:.]*+="[^"<>]*+")*+)>[^<]*+)*+'
)
_SIMPLE_PART_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*>|([^<]+)")
# Tags whose content the extractor hides or reads raw (script and style).
_NOT_SIMPLE = _HIDDEN | {"script", "style"}


def _simple_text(html: str) -> str | None:
    """What :class:`_TextExtractor` gives for simple HTML, without it; None for other HTML."""
    if _SIMPLE_HTML_RE.fullmatch(html) is None:
        return None
    parts: list[str] = []
    for _, tag, text in _SIMPLE_PART_RE.findall(html):
        if text:
            parts.append(html_lib.unescape(text).replace("\x00", ""))
            continue
        tag = tag.lower()
        if tag in _NOT_SIMPLE:
            return None
        if tag in _BLOCK:
            parts.append(_PARAGRAPH)
        elif tag in _LINE:
            parts.append(_NEWLINE)
        elif tag in _CELL:
            parts.append(" ")
    return "".join(parts)


def _tidy(text: str) -> str:
    if "\x00" not in text:
        return " ".join(text.split())  # no break marker: one line (what the steps below give)
    # Source newlines are ordinary whitespace in HTML; only markers make breaks.
    text = text.replace("\r", " ").replace("\n", " ")
    text = _BREAKS_RE.sub(_join_breaks, text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return _EXTRA_BREAKS_RE.sub("\n\n", text).strip()
