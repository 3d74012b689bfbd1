"""The topic query language: parse once, match many documents (pure).

Matching is token-based, case- and accent-insensitive: text and query are both
split with :func:`tokens`, so ``Nagorno-Karabakh`` matches "Nagorno Karabakh",
"Nagorno- Karabakh" and "nagorno-karabakh", and ``cafe`` matches "Café".

Grammar (keywords are upper-case; ``and``/``or``/``not`` are ordinary words)::

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*          adjacent terms: implicit AND
    unary   := ("NOT" | "-") unary | [field] primary-or-unary
    primary := word | word* | "quoted phrase" | /pattern/[i] | "(" or_expr ")"
             | published:DATES | age:AGE | topic:NAME
    field   := title: | content: | author: | tag: | source:

Precedence: NOT > AND > OR. A word containing separators (``Nagorno-Karabakh``,
``9/11``) is a phrase of its tokens; tokens of a phrase must be adjacent and in
order. ``econom*`` matches any token starting with ``econom``; in a phrase
(``nagorno-kar*``) only the last token is a prefix. Inside quotes ``*`` is
punctuation.

Fields: no field = title + content + summary + dateline place (never the
related headlines); ``title:``; ``content:`` = content + summary + dateline;
``author:`` = any author's name contains the phrase; ``tag:`` and ``source:``
match a *whole* tag or source name (the configured source name or the feed's
title) by tokens: ``tag:sport`` matches the tag "Sport" but not "Sports news".
A field applies to the next term, phrase, pattern or parenthesised group
(``title:(a OR b)``); an inner field overrides an outer one.

Patterns: ``/regex/`` (``/regex/i``: case-insensitive) searches the text of
each segment of its field as written (not tokenised or accent-folded), on RE2,
which matches in linear time; a pattern RE2 cannot run that way
(backreferences, lookaround) or over the size bounds does not compile. A ``/``
inside the pattern is written ``\\/``.

Dates, in UTC days: ``published:2026-11-01`` (that day),
``published:2026-11-01..2026-11-30`` (inclusive; either end may be left
open), ``published:>=2026-11-10`` (also ``>``, ``<``, ``<=``). Age, against
the ``now`` the caller passes: ``age:<7d`` (younger than seven days; also
``<=``, ``>``, ``>=``; units ``m`` ``h`` ``d`` ``w``).

``topic:NAME`` stands for another topic's query; :func:`link_topics` resolves
references across a set of topics and refuses unknown names and cycles.

A query may also be *structured*: a mapping of ``all:`` (AND), ``any:`` (OR)
and ``none:`` (NOT any) lists whose items are query strings or nested
mappings; it compiles to the same tree as the string form (see
:func:`compile_query`), and errors name their place (``any[1]``).

Build a :class:`FieldIndex` once per item and a :class:`Query` once per topic;
matching a document against a query looks tokens up in per-field position
indexes and never rescans text (patterns excepted). A :class:`TopicMatcher`
adds a topic's scope (sources, maximum age, languages) to its query.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from aggregator._pattern import Pattern, PatternError, compile_pattern
from aggregator._text import cached_tokens, html_to_text, tokens
from aggregator.errors import QuerySyntaxError
from aggregator.model import Item, TopicSpec, utc

__all__ = [
    "FIELDS",
    "Explanation",
    "FieldIndex",
    "Hit",
    "Query",
    "Scope",
    "TopicMatcher",
    "TopicSet",
    "compile_query",
    "compile_topics",
    "document",
    "link_topics",
    "tokens",
]

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


# ---------------------------------------------------------------------------
# Compiled queries


@dataclass(frozen=True, slots=True)
class Hit:
    """One clause that matched one field of a document."""

    #: the clause in canonical form, e.g. ``title:iran`` or ``/^breaking/i``
    clause: str
    #: where it matched: ``title``, ``content``, ``summary``, ``dateline``,
    #: ``author``, ``tag``, ``source`` or ``published``
    field: str
    #: the matched words (tokens), the text a pattern matched, or the date
    matched: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a query matched a document, or why not."""

    matched: bool
    #: one line per deciding clause, e.g. ``title contains "nagorno karabakh"``
    reasons: tuple[str, ...]
    #: every clause that found something, whether or not the whole matched:
    #: which clause matched which field, with the matched words
    hits: tuple[Hit, ...] = ()


@dataclass(slots=True)
class _Why:
    """A node's explanation while it is being built."""

    ok: bool
    reasons: list[str]
    hits: list[Hit] = field(default_factory=list)


_OR, _AND, _NOT, _TERM = 1, 2, 3, 4  # precedence, for minimal parentheses


class _Node:
    __slots__ = ()
    precedence = _TERM

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        raise NotImplementedError

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        raise NotImplementedError

    def canonical(self) -> str:
        raise NotImplementedError

    def children_nodes(self) -> tuple[_Node, ...]:
        return ()

    def needs(self) -> frozenset[str] | None:
        """Tokens of which a matching document holds at least one, in any field.

        A necessary condition for a cheap prefilter (see :class:`TopicSet`);
        None when there is none (a negation, a pattern, a date, a prefix).
        """
        return None

    def link(self, table: Mapping[str, _Node]) -> _Node:
        """This node with every ``topic:`` reference pointed at ``table``'s query."""
        return self

    def wrapped(self, outer: int) -> str:
        """Canonical form, parenthesised when it binds looser than ``outer``."""
        text = self.canonical()
        return f"({text})" if self.precedence < outer else text

    def walk(self) -> Iterator[_Node]:
        """This node and every node under it (not through linked references)."""
        stack: list[_Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children_nodes()))


@dataclass(frozen=True, slots=True, eq=False)
class _Term(_Node):
    field: FieldName | None
    words: tuple[str, ...]
    prefix: bool

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        words, prefix = self.words, self.prefix
        if self.field in _WHOLE_FIELDS:
            return any(s.whole(words, prefix) for s in doc.segments(self.field))
        segments = doc.segments(self.field)
        if len(words) == 1 and not prefix:
            # The common case, one set lookup per segment: no find() call, and
            # a plain loop (not any() over a generator) as it runs for every
            # story and topic.
            word = words[0]
            for segment in segments:  # noqa: SIM110
                if word in segment.words:
                    return True
            return False
        return any(s.find(words, prefix) is not None for s in segments)

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        clause = self.canonical()
        for segment in doc.segments(self.field):
            if self.field in _WHOLE_FIELDS:
                if segment.whole(self.words, self.prefix):
                    return _Why(
                        True,
                        [f'{segment.label} "{segment.text}" matches {clause}'],
                        [Hit(clause, segment.label, segment.text)],
                    )
                continue
            found = segment.find(self.words, self.prefix)
            if found is not None:
                words = " ".join(found)
                reason = f'{segment.label} contains "{words}"'
                if self.prefix:
                    reason += f" ({clause})"
                return _Why(True, [reason], [Hit(clause, segment.label, words)])
        return _Why(False, [f"no match for {clause}"])

    def needs(self) -> frozenset[str] | None:
        exact = self.words[:-1] if self.prefix else self.words
        # Every exact word is needed; the longest is likely the rarest.
        return frozenset((max(exact, key=len),)) if exact else None

    def canonical(self) -> str:
        if len(self.words) == 1:
            body = self.words[0] + ("*" if self.prefix else "")
        elif self.prefix:
            # A quoted phrase has no wildcard, so write the hyphenated form.
            body = "-".join(self.words) + "*"
        else:
            body = '"' + " ".join(self.words) + '"'
        return f"{self.field}:{body}" if self.field else body


#: longest excerpt of a pattern's match quoted in an explanation
_EXCERPT = 80


@dataclass(frozen=True, slots=True, eq=False)
class _Pattern(_Node):
    field: FieldName | None
    pattern: Pattern

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        search = self.pattern.search
        return any(search(s.text) is not None for s in doc.segments(self.field))

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        clause = self.canonical()
        for segment in doc.segments(self.field):
            found = self.pattern.search(segment.text)
            if found is not None:
                excerpt = found if len(found) <= _EXCERPT else found[: _EXCERPT - 1] + "…"
                return _Why(
                    True,
                    [f'{segment.label} matches {clause}: "{excerpt}"'],
                    [Hit(clause, segment.label, excerpt)],
                )
        return _Why(False, [f"no match for {clause}"])

    def canonical(self) -> str:
        body = "/" + self.pattern.source + "/" + ("i" if self.pattern.ignore_case else "")
        return f"{self.field}:{body}" if self.field else body


@dataclass(frozen=True, slots=True, eq=False)
class _Published(_Node):
    """``published:...``: publication in ``[start, end)`` (either end open)."""

    start: datetime | None
    end: datetime | None
    #: the clause's value, normalised: ``2026-11-01..2026-11-30``, ``>=2026-11-10``
    spelling: str

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        published = doc.published
        if published is None:
            return False
        return (self.start is None or published >= self.start) and (
            self.end is None or published < self.end
        )

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        clause = self.canonical()
        if doc.published is None:
            return _Why(False, [f"no publication date for {clause}"])
        when = doc.published.isoformat()
        if self.matches(doc, now):
            return _Why(
                True, [f"published {when} matches {clause}"], [Hit(clause, "published", when)]
            )
        return _Why(False, [f"published {when} is outside {clause}"])

    def canonical(self) -> str:
        return f"published:{self.spelling}"


_AGE_UNITS = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_AGE_RE = re.compile(r"(<=|>=|<|>)(\d{1,6})([mhdw])")


@dataclass(frozen=True, slots=True, eq=False)
class _Age(_Node):
    """``age:<7d``: how long before ``now`` the document was published."""

    operator: str
    amount: int
    unit: str

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        if now is None:
            raise ValueError(f"{self.canonical()} needs the current time: pass now")
        if doc.published is None:
            return False
        age = now - doc.published
        limit = self.amount * _AGE_UNITS[self.unit]
        if self.operator == "<":
            return age < limit
        if self.operator == "<=":
            return age <= limit
        if self.operator == ">":
            return age > limit
        return age >= limit

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        clause = self.canonical()
        if doc.published is None:
            return _Why(False, [f"no publication date for {clause}"])
        matched = self.matches(doc, now)
        assert now is not None  # matches() raised otherwise
        when = doc.published.isoformat()
        age = _duration(now - doc.published)
        if matched:
            reason = f"published {when} ({age} ago) matches {clause}"
            return _Why(True, [reason], [Hit(clause, "published", when)])
        return _Why(False, [f"published {when} ({age} ago) fails {clause}"])

    def canonical(self) -> str:
        return f"age:{self.operator}{self.amount}{self.unit}"


def _duration(delta: timedelta) -> str:
    """``3d 4h``, ``12m``: a short human age for explanations."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 0:
        return "in the future: -" + _duration(-delta)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


@dataclass(frozen=True, slots=True, eq=False)
class _Ref(_Node):
    """``topic:NAME``: another topic's query, once :func:`link_topics` resolved it."""

    name: str
    #: where the reference is written, for errors
    query: str
    column: int
    path: str
    target: _Node | None = None

    def _resolved(self) -> _Node:
        if self.target is None:
            raise ValueError(f"topic:{self.name} is not resolved: compile topics with link_topics")
        return self.target

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        return self._resolved().matches(doc, now)

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        why = self._resolved().explain(doc, now)
        why.reasons = [f"topic:{self.name}: {reason}" for reason in why.reasons]
        return why

    def canonical(self) -> str:
        return f"topic:{self.name}"

    def needs(self) -> frozenset[str] | None:
        return self.target.needs() if self.target is not None else None

    def link(self, table: Mapping[str, _Node]) -> _Node:
        return _Ref(self.name, self.query, self.column, self.path, table[self.name])


@dataclass(frozen=True, slots=True, eq=False)
class _Not(_Node):
    child: _Node
    precedence = _NOT

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        return not self.child.matches(doc, now)

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        why = self.child.explain(doc, now)
        text = self.canonical()
        if why.ok:
            return _Why(False, [f"{text} failed: {'; '.join(why.reasons)}"], why.hits)
        return _Why(True, [f"{text} satisfied"], why.hits)

    def canonical(self) -> str:
        return "NOT " + self.child.wrapped(_NOT)

    def children_nodes(self) -> tuple[_Node, ...]:
        return (self.child,)

    def link(self, table: Mapping[str, _Node]) -> _Node:
        return _Not(self.child.link(table))


@dataclass(frozen=True, slots=True, eq=False)
class _Group(_Node):
    """AND or OR over children; subclasses say which."""

    children: tuple[_Node, ...]

    @staticmethod
    def combine(results: Iterable[bool]) -> bool:
        raise NotImplementedError

    def matches(self, doc: FieldIndex, now: datetime | None) -> bool:
        # A plain loop, not combine(generator): this runs for every story and topic.
        decisive = self.precedence == _OR
        for child in self.children:
            if child.matches(doc, now) is decisive:
                return decisive
        return not decisive

    def explain(self, doc: FieldIndex, now: datetime | None) -> _Why:
        results = [child.explain(doc, now) for child in self.children]
        matched = self.combine(why.ok for why in results)
        # The children that decided: for AND, all when it matched, else the
        # failing ones; for OR, the matching ones when it matched, else all.
        return _Why(
            matched,
            [r for why in results if why.ok == matched for r in why.reasons],
            [h for why in results for h in why.hits],
        )

    def canonical(self) -> str:
        joint = " AND " if self.precedence == _AND else " OR "
        return joint.join(child.wrapped(self.precedence + 1) for child in self.children)

    def children_nodes(self) -> tuple[_Node, ...]:
        return self.children

    def needs(self) -> frozenset[str] | None:
        found = [child.needs() for child in self.children]
        if self.precedence == _OR:
            # Any child may match: every child must have a condition.
            if any(need is None for need in found):
                return None
            return frozenset().union(*(need for need in found if need is not None))
        # Every child must match: any child's condition will do; the smallest.
        conditions = [need for need in found if need is not None]
        return min(conditions, key=len) if conditions else None

    def link(self, table: Mapping[str, _Node]) -> _Node:
        return type(self)(tuple(child.link(table) for child in self.children))


@dataclass(frozen=True, slots=True, eq=False)
class _And(_Group):
    precedence = _AND

    @staticmethod
    def combine(results: Iterable[bool]) -> bool:
        return all(results)


@dataclass(frozen=True, slots=True, eq=False)
class _Or(_Group):
    precedence = _OR

    @staticmethod
    def combine(results: Iterable[bool]) -> bool:
        return any(results)


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled topic query. Build it with :func:`compile_query`.

    ``str(query)`` is the canonical form: normalised tokens, explicit
    ``AND``/``NOT``, fields pushed down onto terms, minimal parentheses;
    compiling it again gives the same query.
    """

    #: the query as written; for a structured query, its canonical string form
    text: str
    _root: _Node = field(repr=False, compare=False)

    @property
    def references(self) -> tuple[str, ...]:
        """Names of the topics this query reuses with ``topic:``, in order, once each."""
        return tuple(dict.fromkeys(n.name for n in self._root.walk() if isinstance(n, _Ref)))

    @property
    def needs_now(self) -> bool:
        """Whether matching needs the current time (an ``age:`` clause, here or reused)."""
        return _needs_now(self._root)

    def matches(self, doc: FieldIndex, now: datetime | None = None) -> bool:
        """Whether ``doc`` satisfies the query.

        Args:
            doc: an indexed document (see :func:`document`).
            now: the current time; needed when :attr:`needs_now`.

        Returns:
            True when it matches.

        Raises:
            ValueError: an ``age:`` clause without ``now``, or a ``topic:``
                reference that :func:`link_topics` did not resolve.
        """
        return self._root.matches(doc, now)

    def explain(self, doc: FieldIndex, now: datetime | None = None) -> Explanation:
        """Say why ``doc`` matches the query or not.

        Args:
            doc: an indexed document.
            now: the current time; needed when :attr:`needs_now`.

        Returns:
            ``matched`` (same as :meth:`matches`), the deciding reasons and
            the clauses that found something, field by field.

        Raises:
            ValueError: as :meth:`matches`.
        """
        why = self._root.explain(doc, now)
        return Explanation(matched=why.ok, reasons=tuple(why.reasons), hits=tuple(why.hits))

    def __str__(self) -> str:
        return self._root.canonical()


def _needs_now(root: _Node) -> bool:
    for node in root.walk():
        if isinstance(node, _Age):
            return True
        if isinstance(node, _Ref) and node.target is not None and _needs_now(node.target):
            return True
    return False


# ---------------------------------------------------------------------------
# Lexer

_WORD_END = frozenset(' \t\n\r\f\v()"')
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
# Clause kinds written `kind:value` that are not fields over text.
_CLAUSES = frozenset({"published", "age", "topic"})
_TOPIC_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class _Token:
    #: WORD PHRASE FIELD PATTERN CLAUSE LPAREN RPAREN AND OR NOT MINUS EOF
    kind: str
    text: str
    #: 1-based
    column: int
    #: a pattern's flags (``i``)
    flags: str = ""


def _field_name(word: str) -> str | None:
    """``title`` for ``title:...``; None when the word is not field-shaped."""
    name, colon, rest = word.partition(":")
    if not colon or not name.isascii() or not name.isalpha() or rest.startswith("//"):
        return None
    return name


class _Lexer:
    def __init__(self, query: str, path: str) -> None:
        self.query = query
        self.path = path

    def error(self, message: str, column: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.query, column=column, path=self.path)

    def lex(self) -> list[_Token]:
        query = self.query
        out: list[_Token] = []
        i, size = 0, len(query)
        while i < size:
            char = query[i]
            column = i + 1
            if char.isspace():
                i += 1
            elif char == "(":
                out.append(_Token("LPAREN", char, column))
                i += 1
            elif char == ")":
                out.append(_Token("RPAREN", char, column))
                i += 1
            elif char == '"':
                end = query.find('"', i + 1)
                if end < 0:
                    raise self.error("unterminated quote", column)
                out.append(_Token("PHRASE", query[i + 1 : end], column))
                i = end + 1
            elif char == "/":
                token, i = self.pattern(i)
                out.append(token)
            elif char == "-" and (i + 1 >= size or query[i + 1].isspace() or query[i + 1] == ")"):
                raise self.error("'-' needs a term right after it", column)
            elif char == "-":
                out.append(_Token("MINUS", char, column))
                i += 1
            else:
                end = i
                while end < size and query[end] not in _WORD_END:
                    end += 1
                word = query[i:end]
                name = _field_name(word)
                if word in _KEYWORDS:
                    out.append(_Token(word, word, column))
                elif name is not None and name.lower() in _CLAUSES:
                    out.append(_Token("CLAUSE", word, column))
                elif name is not None:
                    if name.lower() not in FIELDS:
                        known = ", ".join((*FIELDS, *sorted(_CLAUSES)))
                        raise self.error(f"unknown field {name!r} (fields: {known})", column)
                    out.append(_Token("FIELD", name.lower(), column))
                    # Lex what follows the colon as ordinary tokens: `title:-x`, `tag:sport`.
                    end = i + len(name) + 1
                else:
                    out.append(_Token("WORD", word, column))
                i = end
        out.append(_Token("EOF", "", size + 1))
        return out

    def pattern(self, start: int) -> tuple[_Token, int]:
        """Lex ``/source/flags`` starting at the opening slash."""
        query, size = self.query, len(self.query)
        i = start + 1
        while i < size and query[i] != "/":
            i += 2 if query[i] == "\\" else 1
        if i >= size:
            raise self.error("unterminated pattern: a pattern ends with '/'", start + 1)
        source = query[start + 1 : i]
        if not source:
            raise self.error("empty pattern", start + 1)
        end = i + 1
        while end < size and query[end] not in _WORD_END:
            end += 1
        flags = query[i + 1 : end]
        if flags not in ("", "i"):
            raise self.error(f"unknown pattern flag in {flags!r} (the only flag is i)", i + 2)
        return _Token("PATTERN", source, start + 1, flags), end


# ---------------------------------------------------------------------------
# Parser

_MAX_DEPTH = 100
_STARTS = frozenset({"WORD", "PHRASE", "FIELD", "PATTERN", "CLAUSE", "LPAREN", "NOT", "MINUS"})


def _describe(token: _Token) -> str:
    return f"'{token.text}:'" if token.kind == "FIELD" else f"'{token.text}'"


class _Parser:
    def __init__(self, query: str, path: str = "") -> None:
        self.query = query
        self.path = path
        self.tokens = _Lexer(query, path).lex()
        self.at = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def error(self, message: str, column: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.query, column=column, path=self.path)

    def fail(self, message: str, token: _Token) -> QuerySyntaxError:
        return self.error(message, token.column)

    def parse(self) -> _Node:
        if self.peek().kind == "EOF":
            raise self.error("empty query", 1)
        node = self.or_expr(None, None)
        token = self.peek()
        if token.kind == "RPAREN":
            raise self.fail("unmatched ')'", token)
        return node

    def or_expr(self, after: _Token | None, scope: FieldName | None) -> _Node:
        children = [self.and_expr(after, scope)]
        while self.peek().kind == "OR":
            operator = self.take()
            children.append(self.and_expr(operator, scope))
        return _flatten(_Or, children)

    def and_expr(self, after: _Token | None, scope: FieldName | None) -> _Node:
        children = [self.unary(after, scope)]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                operator = self.take()
                children.append(self.unary(operator, scope))
            elif kind in _STARTS:
                children.append(self.unary(None, scope))
            else:
                break
        return _flatten(_And, children)

    def unary(self, after: _Token | None, scope: FieldName | None) -> _Node:
        token = self.peek()
        self.depth += 1
        try:
            return self._unary(token, after, scope)
        finally:
            self.depth -= 1

    def _unary(self, token: _Token, after: _Token | None, scope: FieldName | None) -> _Node:
        if self.depth > _MAX_DEPTH:
            # Deeper than any real query; stop before Python's recursion limit.
            raise self.fail(f"query nests more than {_MAX_DEPTH} levels deep", token)
        if token.kind in ("NOT", "MINUS"):
            self.take()
            return _Not(self.unary(token, scope))
        if token.kind == "FIELD":
            self.take()
            return self.unary(token, _FIELD_BY_NAME[token.text])
        if token.kind == "LPAREN":
            self.take()
            inner = self.or_expr(token, scope)
            if self.peek().kind != "RPAREN":
                raise self.fail("unclosed '('", token)
            self.take()
            return inner
        if token.kind == "WORD":
            self.take()
            return self.word(token, scope)
        if token.kind == "PHRASE":
            self.take()
            words = tuple(tokens(token.text))
            if not words:
                raise self.fail("empty phrase", token)
            return _Term(scope, words, prefix=False)
        if token.kind == "PATTERN":
            self.take()
            try:
                pattern = compile_pattern(token.text, ignore_case=token.flags == "i")
            except PatternError as exc:
                raise self.fail(str(exc), token) from None
            return _Pattern(scope, pattern)
        if token.kind == "CLAUSE":
            self.take()
            if scope is not None:
                raise self.fail(f"a field ({scope}:) cannot apply to {token.text!r}", token)
            return self.clause(token)
        raise self.missing_term(token, after)

    def missing_term(self, token: _Token, after: _Token | None) -> QuerySyntaxError:
        """The error for ``token`` where a term was expected after ``after``."""
        if token.kind in ("AND", "OR"):
            return self.fail(f"'{token.text}' needs a term before it", token)
        if after is not None and after.kind == "LPAREN":
            if token.kind == "RPAREN":
                return self.fail("empty parentheses", after)
            return self.fail("unclosed '('", after)
        if after is not None:
            return self.fail(f"{_describe(after)} needs a term after it", after)
        return self.fail("unmatched ')'", token)

    def word(self, token: _Token, scope: FieldName | None) -> _Term:
        text = token.text
        prefix = text.endswith("*")
        stem = text[:-1] if prefix else text
        star = stem.find("*")
        if star >= 0:
            raise self.error("'*' is only allowed at the end of a term", token.column + star)
        if prefix and not (stem and stem[-1].isalnum()):
            raise self.fail("'*' must follow a letter or digit", token)
        words = tuple(tokens(stem))
        if not words:
            raise self.fail(f"term {text!r} has no letters or digits", token)
        return _Term(scope, words, prefix)

    def clause(self, token: _Token) -> _Node:
        kind, _, value = token.text.partition(":")
        kind = kind.lower()
        if kind == "topic":
            if not _TOPIC_NAME_RE.fullmatch(value):
                raise self.fail(f"'topic:' needs a topic name, not {value!r}", token)
            return _Ref(value, self.query, token.column, self.path)
        if kind == "age":
            found = _AGE_RE.fullmatch(value)
            if found is None:
                raise self.fail(
                    f"bad age {value!r} (use e.g. age:<7d, age:>=12h; units m h d w)", token
                )
            operator, amount, unit = found.groups()
            return _Age(operator, int(amount), unit)
        return self.published(token, value)

    def published(self, token: _Token, value: str) -> _Published:
        usage = "use published:2026-11-01, 2026-11-01..2026-11-30, >=2026-11-10, <2026-11-10"

        def day(text: str) -> datetime:
            try:
                parsed = date.fromisoformat(text)
            except ValueError:
                raise self.fail(f"bad date {text!r} in {token.text!r} ({usage})", token) from None
            if len(text) != 10:
                raise self.fail(f"bad date {text!r} in {token.text!r} ({usage})", token)
            return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)

        one_day = timedelta(days=1)
        for operator in (">=", "<=", ">", "<"):
            if value.startswith(operator):
                at = day(value[len(operator) :])
                spelling = f"{operator}{at.date().isoformat()}"
                if operator == ">=":
                    return _Published(at, None, spelling)
                if operator == ">":
                    return _Published(at + one_day, None, spelling)
                if operator == "<":
                    return _Published(None, at, spelling)
                return _Published(None, at + one_day, spelling)
        if ".." in value:
            low_text, _, high_text = value.partition("..")
            if not low_text and not high_text:
                raise self.fail(f"an empty range in {token.text!r} ({usage})", token)
            low = day(low_text) if low_text else None
            high = day(high_text) if high_text else None
            if low is not None and high is not None and high < low:
                raise self.fail(f"the range in {token.text!r} ends before it starts", token)
            ends = [at.date().isoformat() if at else "" for at in (low, high)]
            spelling = "..".join(ends)
            return _Published(low, high + one_day if high else None, spelling)
        at = day(value)
        return _Published(at, at + one_day, at.date().isoformat())


def _flatten(kind: type[_And] | type[_Or], children: list[_Node]) -> _Node:
    if len(children) == 1:
        return children[0]
    flat: list[_Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


# ---------------------------------------------------------------------------
# Structured queries

#: keys of a structured query, in the order their parts are combined
_STRUCTURED_KEYS = ("all", "any", "none")


def _structure_error(message: str, path: str) -> QuerySyntaxError:
    return QuerySyntaxError(message, query="", column=None, path=path)


def _structured(value: object, path: str, depth: int) -> _Node:
    """Compile one item of a structured query: a query string or a mapping."""
    if depth > _MAX_DEPTH:
        raise _structure_error(f"query nests more than {_MAX_DEPTH} levels deep", path)
    if isinstance(value, str):
        return _Parser(value, path).parse()
    if not isinstance(value, Mapping):
        raise _structure_error(
            f"must be a query string or a mapping of all/any/none, not {type(value).__name__}",
            path,
        )
    if not value:
        raise _structure_error("an empty mapping: give all, any or none", path)
    for key in value:
        if key not in _STRUCTURED_KEYS:
            raise _structure_error(f"unknown key {key!r} (use all, any, none)", path)
    parts: list[_Node] = []
    for key in _STRUCTURED_KEYS:
        if key not in value:
            continue
        here = f"{path}.{key}" if path else key
        items = value[key]
        if not isinstance(items, list | tuple) or not items:
            raise _structure_error("must be a non-empty list", here)
        nodes = [_structured(item, f"{here}[{i}]", depth + 1) for i, item in enumerate(items)]
        combined = _flatten(_And if key == "all" else _Or, nodes)
        parts.append(_Not(combined) if key == "none" else combined)
    return _flatten(_And, parts)


def compile_query(query: str | Mapping[str, object]) -> Query:
    """Parse a topic query (see the module docstring for the language).

    Args:
        query: the query text, or a structured query: a mapping of ``all``
            (every item), ``any`` (at least one) and ``none`` (not one) lists
            whose items are query strings or nested mappings. Several keys in
            one mapping must all hold. ``{"all": ["a", "b"], "none": ["c"]}``
            compiles to the same query as ``a AND b AND NOT c``.

    Returns:
        The compiled query; ``topic:`` references stay unresolved until
        :func:`link_topics`.

    Raises:
        QuerySyntaxError: the query does not compile; ``column`` (1-based)
            points at the offending token, ``path`` at the offending item of
            a structured query (``any[1]``, ``all[0].none[2]``).
    """
    if isinstance(query, str):
        return Query(text=query, _root=_Parser(query).parse())
    root = _structured(query, "", 0)
    return Query(text=root.canonical(), _root=root)


# ---------------------------------------------------------------------------
# Topic references

#: most clauses a topic may expand to through ``topic:`` references: reusing a
#: topic twice at every level doubles the work of a match, so the expansion is
#: bounded at load instead of discovered at match time
MAX_EXPANDED_CLAUSES = 10_000


def _reference_error(message: str, ref: _Ref, topic: str) -> QuerySyntaxError:
    return QuerySyntaxError(message, query=ref.query, column=ref.column, path=ref.path, topic=topic)


def _cycle(start: str, refs: Mapping[str, tuple[_Ref, ...]]) -> list[str] | None:
    """A path of references from ``start`` back to itself, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for ref in reversed(refs[name]):
            if ref.name == start:
                return [*path, start]
            if ref.name not in seen:
                seen.add(ref.name)
                stack.append((ref.name, [*path, ref.name]))
    return None


def link_topics(queries: Mapping[str, Query]) -> dict[str, Query]:
    """Resolve ``topic:NAME`` references across a set of topics.

    Args:
        queries: topic name -> compiled query, in configuration order.

    Returns:
        Topic name -> the query with its references resolved (same text).

    Raises:
        QuerySyntaxError: a reference names no topic in ``queries``, lies on
            a cycle (``a -> b -> a``), or a topic expands to more than
            :data:`MAX_EXPANDED_CLAUSES` clauses; ``topic`` names the topic
            whose query holds it (the first in order), ``column`` and
            ``path`` the reference.
    """
    refs = {
        name: tuple(n for n in query._root.walk() if isinstance(n, _Ref))
        for name, query in queries.items()
    }
    for name, found in refs.items():
        for ref in found:
            if ref.name not in queries:
                raise _reference_error(f"unknown topic {ref.name!r} in topic:{ref.name}", ref, name)
    for name, found in refs.items():
        cycle = _cycle(name, refs)
        if cycle is not None:
            first = next(r for r in found if r.name == cycle[1])
            message = f"topic:{first.name} makes a cycle: {' -> '.join(cycle)}"
            raise _reference_error(message, first, name)
    # No cycles: link in dependency order, each topic after those it reuses.
    order: list[str] = []
    placed: set[str] = set()
    for name in queries:
        pending = [(name, False)]
        while pending:
            current, ready = pending.pop()
            if current in placed:
                continue
            if ready:
                placed.add(current)
                order.append(current)
                continue
            pending.append((current, True))
            pending.extend((r.name, False) for r in refs[current] if r.name not in placed)
    linked: dict[str, _Node] = {}
    sizes: dict[str, int] = {}
    for name in order:
        root = queries[name]._root
        size = 0
        for node in root.walk():
            size += sizes[node.name] if isinstance(node, _Ref) else 1
        if size > MAX_EXPANDED_CLAUSES:
            ref = refs[name][0]
            raise _reference_error(
                f"the topic expands to {size} clauses through topic: references "
                f"(at most {MAX_EXPANDED_CLAUSES})",
                ref,
                name,
            )
        sizes[name] = size
        linked[name] = root.link(linked) if refs[name] else root
    return {name: Query(text=query.text, _root=linked[name]) for name, query in queries.items()}


# ---------------------------------------------------------------------------
# Topics: a query and a scope


@dataclass(frozen=True, slots=True)
class Scope:
    """What a topic admits before its query is asked: sources, age, languages."""

    #: configured source names a story may come from; empty: any source
    sources: frozenset[str] = frozenset()
    #: oldest publication a story may have, against ``now``; None: any age
    max_age: timedelta | None = None
    #: language tags (lower-case); ``en`` admits ``en`` and ``en-GB``; empty: any
    lang: tuple[str, ...] = ()

    def refusal(self, doc: FieldIndex, now: datetime | None) -> str | None:
        """Why ``doc`` is out of scope, or None when it is in.

        Raises:
            ValueError: a ``max_age`` without ``now``.
        """
        if self.sources and doc.source_name not in self.sources:
            names = ", ".join(sorted(self.sources))
            return f'source "{doc.source_name}" is not one of the topic\'s sources ({names})'
        if self.lang:
            language = (doc.language or "").lower()
            if not any(language == code or language.startswith(code + "-") for code in self.lang):
                shown = f'"{doc.language}"' if doc.language else "unknown"
                return f"language {shown} is not one of the topic's ({', '.join(self.lang)})"
        if self.max_age is not None:
            if now is None:
                raise ValueError("a topic's max_age needs the current time: pass now")
            if doc.published is None or now - doc.published > self.max_age:
                when = doc.published.isoformat() if doc.published else "unknown"
                return f"published {when} is older than the topic's max_age ({self.max_age})"
        return None


@dataclass(frozen=True, slots=True)
class TopicMatcher:
    """One topic, compiled: its linked query and its scope.

    Build them with :func:`compile_topics`.
    """

    name: str
    query: Query
    scope: Scope
    #: changes whenever what the topic admits may change (its query, the
    #: queries it reuses, its scope): the store re-matches every story then
    signature: str

    @property
    def needs_now(self) -> bool:
        """Whether matching needs the current time (``age:`` or ``max_age``)."""
        return self.scope.max_age is not None or self.query.needs_now

    def matches(self, doc: FieldIndex, now: datetime | None = None) -> bool:
        """Whether ``doc`` is in scope and satisfies the query.

        Raises:
            ValueError: :attr:`needs_now` and ``now`` is None.
        """
        return self.scope.refusal(doc, now) is None and self.query.matches(doc, now)

    def explain(self, doc: FieldIndex, now: datetime | None = None) -> Explanation:
        """Say why ``doc`` is in the topic or not: scope first, then the query.

        Raises:
            ValueError: :attr:`needs_now` and ``now`` is None.
        """
        explanation = self.query.explain(doc, now)
        refusal = self.scope.refusal(doc, now)
        if refusal is None:
            return explanation
        return Explanation(
            matched=False, reasons=(refusal, *explanation.reasons), hits=explanation.hits
        )


class TopicSet:
    """Many topics matched against one document at a time, with a word prefilter.

    Most topics need at least one of a few words (``Nagorno-Karabakh OR
    Azerbaijan`` needs "karabakh" or "azerbaijan"); an index from those words
    to topics tells, from a document's token sets, which topics can match at
    all, so the others are never evaluated. Topics with no such condition (a
    negation, a pattern, a date, a prefix) are always evaluated.
    """

    def __init__(self, topics: Mapping[str, TopicMatcher]) -> None:
        self.topics = dict(topics)
        by_word: dict[str, set[str]] = {}
        always: set[str] = set()
        for name, topic in self.topics.items():
            need = topic.query._root.needs()
            if need is None:
                always.add(name)
            for word in need or ():
                by_word.setdefault(word, set()).add(name)
        self._always = frozenset(always)
        self._by_word = {word: frozenset(names) for word, names in by_word.items()}
        self._words = frozenset(by_word)

    def candidates(self, doc: FieldIndex) -> frozenset[str]:
        """Names of the topics that may match ``doc``; the others cannot."""
        found = set(self._always)
        words, by_word = self._words, self._by_word
        for name in FIELDS:
            for segment in doc.segments(name):
                for word in words & segment.words:
                    found |= by_word[word]
        return frozenset(found)


def _signature(spec: TopicSpec, specs: Mapping[str, TopicSpec], query: Query) -> str:
    """What the store compares to decide whether to re-match a topic.

    A plain query with no scope keeps its text, so existing stores do not
    re-match on upgrade; anything more is a canonical JSON of everything the
    topic's membership depends on.
    """
    reused: dict[str, str] = {}
    pending = list(query.references)
    while pending:
        name = pending.pop()
        if name not in reused:
            reused[name] = specs[name].query
            pending.extend(compile_query(specs[name].query).references)
    if not (reused or spec.sources or spec.max_age or spec.lang):
        return spec.query
    return json.dumps(
        {
            "query": spec.query,
            "reuses": reused,
            "sources": sorted(spec.sources),
            "max_age": spec.max_age.total_seconds() if spec.max_age else None,
            "lang": list(spec.lang),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def compile_topics(specs: Sequence[TopicSpec]) -> dict[str, TopicMatcher]:
    """Compile every topic: queries, ``topic:`` references, scopes.

    Args:
        specs: the configured topics (names unique).

    Returns:
        Topic name -> its matcher, in the given order.

    Raises:
        QuerySyntaxError: a query does not compile, or a reference is unknown,
            cyclic or expands too far; ``topic`` names the topic.
    """
    compiled: dict[str, Query] = {}
    for spec in specs:
        try:
            compiled[spec.name] = compile_query(spec.query)
        except QuerySyntaxError as exc:
            exc.topic = spec.name
            raise
    linked = link_topics(compiled)
    by_name = {spec.name: spec for spec in specs}
    return {
        spec.name: TopicMatcher(
            name=spec.name,
            query=linked[spec.name],
            scope=Scope(
                sources=frozenset(spec.sources),
                max_age=spec.max_age,
                lang=tuple(code.lower() for code in spec.lang),
            ),
            signature=_signature(spec, by_name, compiled[spec.name]),
        )
        for spec in specs
    }
