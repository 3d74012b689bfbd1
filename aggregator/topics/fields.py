"""Field indexes: an item's text, tokenised and indexed per field, once per item (pure)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from aggregator.model import Item, utc
from aggregator.text.plain import cached_tokens, html_to_text

FieldName = Literal["title", "content", "author", "tag", "source"]
#: Field names a query may use, as in ``title:word``.
FIELDS: tuple[FieldName, ...] = ("title", "content", "author", "tag", "source")
_FIELD_BY_NAME: dict[str, FieldName] = {name: name for name in FIELDS}
# Fields whose values must match whole (tag:sport is not "Sports news").
_WHOLE_FIELDS = frozenset({"tag", "source"})


# ---------------------------------------------------------------------------
# Field indexes: an item's text, tokenised per field


class _Segment:
    """One indexed text: a title, a content body, one author, one tag...

    Immutable by convention (private, built once per document). Indexing is
    deliberately light, because every stored story is indexed again when a
    topic changes: the tokens in order and their set; a phrase is found by
    ``tuple.index`` from its first word, prefixes by bisecting a sorted
    vocabulary built only when a prefix is asked for.
    """

    __slots__ = ("_vocabulary", "label", "text", "tokens", "words")

    def __init__(self, label: str, text: str) -> None:
        #: what the text is, for explanations: "title", "summary", "tag"...
        self.label = label
        #: the text as given (explanations quote it; patterns search it)
        self.text = text
        self.tokens: tuple[str, ...] = cached_tokens(text)
        #: the distinct tokens
        self.words: frozenset[str] = frozenset(self.tokens)
        self._vocabulary: list[str] | None = None

    @classmethod
    def build(cls, label: str, text: str) -> _Segment:
        return cls(label, text)

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def shared(label: str, text: str) -> _Segment:
        """A segment for a short text many documents repeat (a tag, an author, a source).

        Re-matching every stored story indexes the same few names again and
        again; sharing their segments across documents saves most of a
        document's indexing beyond its title and body. Safe because a
        segment never changes once built (its vocabulary is a cache).
        """
        return _Segment(label, text)

    def prefixed(self, prefix: str) -> str | None:
        """The first token (alphabetically) that starts with ``prefix``."""
        vocabulary = self._vocabulary
        if vocabulary is None:
            vocabulary = self._vocabulary = sorted(self.words)
        at = bisect.bisect_left(vocabulary, prefix)
        if at < len(vocabulary) and vocabulary[at].startswith(prefix):
            return vocabulary[at]
        return None

    def find(self, words: tuple[str, ...], prefix: bool) -> tuple[str, ...] | None:
        """Where the phrase occurs, the tokens it matched; else None."""
        last = words[-1]
        if len(words) == 1:
            if not prefix:
                return words if last in self.words else None
            hit = self.prefixed(last)
            return (hit,) if hit is not None else None
        head = words[:-1]
        present = self.words
        for word in head:
            if word not in present:
                return None  # cheap rejection before walking the tokens
        own = self.tokens
        size, first, start = len(words), words[0], 0
        while True:
            try:
                start = own.index(first, start)
            except ValueError:
                return None
            end = start + size
            if end > len(own):
                return None
            if own[start : end - 1] == head:
                candidate = own[end - 1]
                if candidate == last or (prefix and candidate.startswith(last)):
                    return own[start:end]
            start += 1

    def whole(self, words: tuple[str, ...], prefix: bool) -> bool:
        """Whether the phrase is this segment's entire token sequence."""
        own = self.tokens
        if not prefix:
            return own == words
        return len(own) == len(words) and own[:-1] == words[:-1] and own[-1].startswith(words[-1])


@dataclass(frozen=True, slots=True, eq=False)
class FieldIndex:
    """An item's text, tokenised and indexed per field, ready for many queries.

    Build it with :func:`document` (from an :class:`~aggregator.model.Item`)
    or :meth:`from_fields` (from plain text).
    """

    title: tuple[_Segment, ...]
    #: content, summary and dateline place
    content: tuple[_Segment, ...]
    #: one segment per author
    author: tuple[_Segment, ...]
    #: one segment per tag
    tag: tuple[_Segment, ...]
    #: the source name and the feed's title
    source: tuple[_Segment, ...]
    #: what a term without a field searches: title + content
    default: tuple[_Segment, ...] = field(default=())
    #: publication date, for ``published:``, ``age:`` and a topic's ``max_age``
    published: datetime | None = None
    #: the item's language tag (``en``, ``fa-IR``), for a topic's ``lang``
    language: str | None = None
    #: the configured source's name, for a topic's ``sources``
    source_name: str = ""

    @classmethod
    def from_fields(
        cls,
        *,
        title: str = "",
        content_text: str = "",
        summary: str = "",
        dateline: str = "",
        authors: Iterable[str] = (),
        tags: Iterable[str] = (),
        source: str = "",
        feed_title: str | None = None,
        published: datetime | None = None,
        language: str | None = None,
    ) -> FieldIndex:
        """Index plain-text fields.

        Args:
            title: plain-text title.
            content_text: plain-text body (strip HTML first).
            summary: plain-text summary.
            dateline: the dateline's place.
            authors: author names.
            tags: tags.
            source: the configured source's name.
            feed_title: the source feed's own title; ``source:`` matches it too.
            published: publication date (timezone-aware).
            language: the item's language tag.

        Returns:
            The indexed document.
        """
        title_part = (_Segment.build("title", title),)
        content_part = tuple(
            _Segment.build(label, text) if label != "dateline" else _Segment.shared(label, text)
            for label, text in (
                ("content", content_text),
                ("summary", summary),
                ("dateline", dateline),
            )
            if text
        )
        sources = dict.fromkeys(name for name in (source, feed_title) if name)
        return cls(
            title=title_part,
            content=content_part,
            author=tuple(_Segment.shared("author", a) for a in authors if a),
            tag=tuple(_Segment.shared("tag", t) for t in tags if t),
            source=tuple(_Segment.shared("source", name) for name in sources),
            default=title_part + content_part,
            published=utc(published) if published is not None else None,
            language=language,
            source_name=source,
        )

    def segments(self, name: FieldName | None) -> tuple[_Segment, ...]:
        """The segments a term with field ``name`` (None: default) searches."""
        if name is None:
            return self.default
        segments: tuple[_Segment, ...] = getattr(self, name)
        return segments


def document(item: Item) -> FieldIndex:
    """Index an item for matching: everything but its related headlines.

    Args:
        item: a normalised item.

    Returns:
        The document; ``source:`` matches the configured source name and the
        origin feed's title.
    """
    return FieldIndex.from_fields(
        title=item.title,
        content_text=html_to_text(item.content_html),
        summary=item.summary,
        dateline=item.dateline.place if item.dateline else "",
        authors=item.authors,
        tags=item.tags,
        source=item.source,
        feed_title=item.origin.title if item.origin else None,
        published=item.published,
        language=item.language,
    )
