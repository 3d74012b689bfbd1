"""Near-duplicate stories: sketches of an entry's text and the precise check (pure).

Two entries are the same story told again when one's body is (mostly) contained
in the other's: a wire copy under a new headline, a copy-edit, a truncated
copy, a copy with a dateline, breadcrumbs or a related-headlines list added.

- **Text**: the entry's body only (headlines are rewritten freely), as plain
  text, without what the parsers already keep apart (dateline, related
  headlines) and without the boilerplate a feed glues to the body: a
  breadcrumb line at the top, a trailing related list headed by a label of
  any language table (:mod:`aggregator.text.labels`: "Read more", "Читайте также").
- **Candidates**: MinHash over word shingles, cut into LSH bands (a few
  numpy lines in :mod:`aggregator.stories.minhash`, drawn as datasketch 2 draws:
  datasketch itself pulled scipy into every worker); :mod:`aggregator.store.stories` keeps one
  indexed row per band, so a lookup is an indexed equality query shared by
  every worker and kept across restarts. MinHash LSH rather than SimHash
  because SimHash finds only texts within a few bits of Hamming distance
  (copies, not a copy cut to half its length), and searching Hamming balls
  needs permuted tables, while band keys are plain equality lookups that any
  SQL index serves.
- **Check**: shingle containment (shared shingles over the smaller text's),
  with a guard against follow-ups that reuse a background paragraph: below
  :attr:`NearDupSettings.strict_containment`, numbers in either text's lead
  that the other text never mentions mean a different event.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import filterfalse, pairwise

from aggregator.model import Item, NearDupSettings, Vector
from aggregator.text.labels import labels
from aggregator.text.plain import cached_tokens, html_to_text
from aggregator.topics import tokens

__all__ = [
    "NearDupSettings",
    "Score",
    "Sketch",
    "best_match",
    "body_text",
    "body_text_html",
    "compare",
    "sketch",
    "sketch_text",
]


@dataclass(frozen=True, slots=True)
class Sketch:
    """What the index and the check need of one entry's text."""

    #: words in the body
    words: int
    #: the hashed word shingles, sorted, as packed unsigned 32-bit values: a
    #: sketch travels from a worker to the writer and waits there with its
    #: batch, and a set of Python ints is about fifteen times the size
    packed: bytes
    #: number tokens of the lead, and of the whole body
    lead_numbers: frozenset[str]
    numbers: frozenset[str]
    #: one LSH key per band (signed 64-bit, to fit BIGINT)
    bands: tuple[int, ...]
    #: the title and lead's embedding, made beside the sketch with ``dedup.semantic``
    meaning: Vector | None = None

    @property
    def shingles(self) -> frozenset[int]:
        """The hashed word shingles."""
        values = array(_U32)
        values.frombytes(self.packed)
        return frozenset(values)


@dataclass(frozen=True, slots=True)
class Score:
    """Why two entries are, or are not, the same story."""

    #: shared shingles over the smaller text's shingles
    containment: float
    #: shared shingles over all shingles (Jaccard)
    resemblance: float
    #: numbers one lead has that the other text lacks (sorted)
    number_conflict: tuple[str, ...]
    same: bool
    #: one line: why ``same`` is what it is
    reason: str


# Breadcrumb separators: single and double right-pointing quotes, >, |, /.
#: English function words, left out of shingles
_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "against",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "during",
        "each",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "s",
        "t",
        "said",
        "says",
    ]
)

#: the array type code of unsigned 32-bit values on this platform
_U32 = next(code for code in "IL" if array(code).itemsize == 4)
_DIGIT = re.compile(r"\d")
_BREADCRUMB = re.compile(r"^[^\n]{0,80}(?:\s[\u203a\u00bb>|/]\s[^\n]{1,40}){1,6}$")


def body_text(item: Item) -> str:
    """The entry's body as plain text, boilerplate left out.

    Args:
        item: a normalised entry (its dateline and related headlines are
            already apart from ``content_html``).

    Returns:
        Paragraphs joined by newlines; the title is not part of it.
    """
    return body_text_html(item.content_html)


def body_text_html(content_html: str) -> str:
    """:func:`body_text` of an entry's stored ``content_html``."""
    return "\n".join(_body_lines(content_html)[0])


def body_words(content_html: str) -> int:
    """Words in the body of an entry's stored ``content_html``: the fullest telling wins."""
    return len(tokens(body_text_html(content_html)))


def _body_lines(content_html: str) -> tuple[list[str], bool]:
    """The body's non-empty lines, and whether any text was cut (breadcrumb, related list)."""
    lines = [line.strip() for line in html_to_text(content_html).splitlines()]
    lines = [line for line in lines if line]
    cut = False
    # the related-headline labels every reader uses (text/lang/*.toml)
    related = labels().related_line
    if lines and _BREADCRUMB.match(lines[0]):
        lines, cut = lines[1:], True
    for i, line in enumerate(lines):
        if i and related.match(line):
            lines, cut = lines[:i], True
            break
    return lines, cut


def _body_words(content_html: str) -> Sequence[str]:
    """``tokens(body_text_html(content_html))``.

    Without a cut, the body differs from the content's text only in
    whitespace, which never joins or splits a token: its tokens are the
    content's, which the topic document and the fingerprint have just made.
    """
    lines, cut = _body_lines(content_html)
    if cut:
        return tokens("\n".join(lines))
    return cached_tokens(html_to_text(content_html))


def _shingle_hashes(words: Sequence[str], k: int) -> list[int]:
    """CRC-32 of each run of ``k`` words joined by spaces, in order.

    CRC-32: stable across processes (band keys are stored), and a C call.
    """
    if k == 2:
        return [zlib.crc32(f"{a} {b}".encode()) for a, b in pairwise(words)]
    runs = zip(*(words[j:] for j in range(k)), strict=False)
    return [zlib.crc32(" ".join(run).encode()) for run in runs]


def sketch(item: Item, settings: NearDupSettings) -> Sketch | None:
    """Sketch an entry's body; None when it is too short to compare.

    Args:
        item: the entry.
        settings: shingle size, bands and rows, minimum length.

    Returns:
        The sketch, or None below ``settings.min_words``.
    """
    return _sketch_words(_body_words(item.content_html), settings, bands=True)


def sketch_text(text: str, settings: NearDupSettings, *, bands: bool = True) -> Sketch | None:
    """:func:`sketch` of plain text (the body as :func:`body_text` gives it).

    Args:
        text: the body.
        settings: shingle size, bands and rows, minimum length.
        bands: False skips the MinHash: a stored candidate is only compared.
    """
    return _sketch_words(tokens(text), settings, bands=bands)


def _sketch_words(
    all_words: Sequence[str], settings: NearDupSettings, *, bands: bool
) -> Sketch | None:
    if len(all_words) < max(settings.min_words, settings.shingle_words):
        return None
    # Function words make shingles that unrelated stories share ("said on
    # monday that the"); leaving them out keeps the bands of unrelated texts apart.
    words = list(filterfalse(_STOPWORDS.__contains__, all_words)) or all_words
    k = settings.shingle_words
    lead = words[: settings.lead_words]
    hashes = _shingle_hashes(words, k)
    if bands:
        # numpy on first use: the writer, which only compares stored texts
        # (no bands), never loads it
        from aggregator.stories import minhash

        # The lead's shingles are the first ones of the body's.
        packed, keys = minhash.shingles_and_bands(
            hashes,
            lead_shingles=max(len(lead) - k + 1, 0),
            bands=settings.bands,
            rows=settings.rows,
        )
    else:
        # What minhash packs, without numpy: the sorted distinct hashes.
        packed, keys = array(_U32, sorted(set(hashes))).tobytes(), ()
    numbers = frozenset(filter(_DIGIT.search, set(all_words)))
    lead_numbers = frozenset(filter(_DIGIT.search, lead))
    return Sketch(len(all_words), packed, lead_numbers, numbers, keys)


def compare(a: Sketch, b: Sketch, settings: NearDupSettings) -> Score:
    """Decide whether two sketched bodies tell the same story.

    Args:
        a: one entry's sketch.
        b: the other's.
        settings: the thresholds.

    Returns:
        The scores and the verdict, with a one-line reason.
    """
    mine, theirs = a.shingles, b.shingles
    shared = len(mine & theirs)
    smaller = min(len(mine), len(theirs)) or 1
    containment = shared / smaller
    resemblance = shared / (len(mine | theirs) or 1)
    conflict = tuple(sorted((a.lead_numbers - b.numbers) | (b.lead_numbers - a.numbers)))
    if containment < settings.containment:
        same, reason = False, f"containment {containment:.2f} < {settings.containment:.2f}"
    elif containment >= settings.strict_containment:
        same, reason = True, f"containment {containment:.2f} >= {settings.strict_containment:.2f}"
    elif (a.lead_numbers - b.numbers) and (b.lead_numbers - a.numbers):
        same = False
        reason = (
            f"containment {containment:.2f} but the leads' numbers differ: {', '.join(conflict)}"
        )
    else:
        same, reason = True, f"containment {containment:.2f}, numbers agree"
    return Score(round(containment, 4), round(resemblance, 4), conflict, same, reason)


def best_match(
    incoming: Sketch, candidates: Sequence[tuple[str, Sketch]], settings: NearDupSettings
) -> tuple[str, Score] | None:
    """The candidate story the incoming text joins, if any: the highest containment that passes.

    Args:
        incoming: the new entry's sketch.
        candidates: ``(story_id, sketch)`` of stored entries sharing a band.
        settings: the thresholds.

    Returns:
        ``(story_id, score)``, or None when no candidate passes; ties go to
        the smaller story id, so every worker picks the same one.
    """
    best: tuple[str, Score] | None = None
    for story_id, other in sorted(candidates, key=lambda c: c[0]):
        score = compare(incoming, other, settings)
        if score.same and (best is None or score.containment > best[1].containment):
            best = (story_id, score)
    return best
