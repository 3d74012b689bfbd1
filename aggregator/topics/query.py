"""The compiled query tree: each clause matches and explains itself over a field index (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.topics.fields import _WHOLE_FIELDS, FieldIndex, FieldName
from aggregator.topics.pattern import Pattern


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
