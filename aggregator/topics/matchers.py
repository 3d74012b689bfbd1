"""Topics compiled: a linked query and a scope; many topics matched with a word prefilter (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.errors import QuerySyntaxError
from aggregator.model import TopicSpec
from aggregator.topics.fields import FIELDS, FieldIndex
from aggregator.topics.linking import link_topics
from aggregator.topics.parser import compile_query
from aggregator.topics.query import Explanation, Query


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
