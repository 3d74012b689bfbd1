"""Topic matching for the ingest engine: predicates for the store, precomputed in the workers.

A source's ``rules`` are matched here too, in the workers, before the topics
(:func:`split_by_rules`, from :mod:`aggregator.topics.rules`): an entry they drop
never reaches the store.

The store asks ``Item -> bool`` predicates inside its transaction. Indexing an
item for matching (HTML to text, tokens) is the costliest part of an ingest
after parsing, so the CPU stage answers every topic for every item it
digests (:func:`matched_topics`), carried to the store in each item's record
(:class:`~aggregator.records.ItemRecord`); the predicates answer for any other item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from aggregator.model import Item, TopicSpec
from aggregator.topics import FieldIndex as MatchDocument
from aggregator.topics import TopicMatcher, TopicSet, compile_topics, document
from aggregator.topics.rules import split_by_rules

if TYPE_CHECKING:
    from aggregator.engine.pool import CpuPool

__all__ = [
    "POOL_MIN_ITEMS",
    "TopicPredicates",
    "build_matchers",
    "matched_topics",
    "split_by_rules",
]

log = logging.getLogger(__name__)

Matchers = dict[str, Callable[[Item], bool]]

#: fewest items a bulk match sends to worker processes (fewer: shipping
#: them costs more than matching them here)
POOL_MIN_ITEMS = 200


class TopicPredicates(Matchers):
    """Topic name -> predicate over an item, that also matches many items at once.

    The predicates serve the store's one-item questions at ingest;
    :meth:`matching_many` serves a re-match of every stored story, indexing
    each item once and asking only the topics its words allow, with the
    same answers as the predicates.
    """

    def __init__(
        self,
        predicates: Mapping[str, Callable[[Item], bool]],
        specs: tuple[TopicSpec, ...],
        clock: Callable[[], datetime],
        pool: CpuPool | None = None,
    ) -> None:
        super().__init__(predicates)
        self._specs = specs
        self._compiled = _compiled(specs)
        self._clock = clock
        self._pool = pool
        # needs_now walks a topic's query: once here, not at every call.
        self._timed = frozenset(n for n, t in self._compiled.topics.items() if t.needs_now)

    def in_pool(self, pool: CpuPool) -> TopicPredicates:
        """These predicates, with :meth:`matching_many` split over ``pool``'s worker processes.

        For a re-match of every stored story: the store reads and writes
        while the workers index and match (a pool of threads would only share
        the GIL, so a pool without processes matches here).
        """
        return TopicPredicates(self, self._specs, self._clock, pool)

    def matching_many(self, items: Sequence[Item], names: Collection[str]) -> list[frozenset[str]]:
        """For each item, the topics among ``names`` it matches.

        The clock is read once for the whole call: every item is matched at
        the same ``now``, in this process or in the pool's workers (which
        give the same answers; a worker that dies sends the call back here).
        """
        chosen = names if isinstance(names, frozenset) else frozenset(names)
        pool = self._pool
        if pool is None or not pool.processes or len(items) < POOL_MIN_ITEMS:
            return self._match(items, chosen, self._clock() if self._timed & chosen else None)
        now = self._clock()
        size = -(-len(items) // pool.workers)
        with pool.borrowed() as executor:
            try:
                futures = [
                    executor.submit(
                        _match_slice, items[start : start + size], self._specs, now, chosen
                    )
                    for start in range(0, len(items), size)
                ]
                return [found for future in futures for found in future.result()]
            except BrokenProcessPool:
                log.warning("a topic matching worker died; matching %d stories here", len(items))
                pool.discard(executor)
        return self._match(items, chosen, now)

    def _match(
        self, items: Sequence[Item], chosen: frozenset[str], now: datetime | None
    ) -> list[frozenset[str]]:
        topics = self._compiled.topics
        timed = self._timed & chosen
        candidates = self._compiled.candidates
        out: list[frozenset[str]] = []
        for item in items:
            doc = document(item)
            out.append(
                frozenset(
                    name
                    for name in candidates(doc) & chosen
                    if topics[name].matches(doc, now if name in timed else None)
                )
            )
        return out


def _match_slice(
    items: Sequence[Item], specs: tuple[TopicSpec, ...], now: datetime, names: frozenset[str]
) -> list[frozenset[str]]:
    """:meth:`TopicPredicates.matching_many` in a worker process, at the caller's ``now``."""
    return build_matchers(specs, clock=lambda: now).matching_many(items, names)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1024)
def _document(item: Item) -> MatchDocument:
    # One item is matched against every topic: tokenise it once.
    return document(item)


def build_matchers(
    topics: Sequence[TopicSpec], *, clock: Callable[[], datetime] = _utcnow
) -> TopicPredicates:
    """Topic name -> predicate over an item, from the topics' queries and scopes.

    The store calls a predicate inside its transaction with the item alone;
    a topic whose decision depends on the time (``age:``, ``max_age``) reads
    ``clock`` at that moment and hands it to the pure matcher, so the store's
    seam stays ``Item -> bool`` and tests inject the clock they run on.
    """
    specs = tuple(topics)
    return TopicPredicates(_build(_compiled(specs), clock), specs, clock)


@lru_cache(maxsize=8)
def _compiled(topics: tuple[TopicSpec, ...]) -> TopicSet:
    return TopicSet(compile_topics(topics))


def _build(compiled: TopicSet, clock: Callable[[], datetime]) -> Matchers:
    # The store asks every topic about one item in turn: index the item and
    # find the topics its words allow once, for the first of them. (Hashing
    # a whole Item for the cache at every question cost more than matching.)
    last: list[tuple[Item, MatchDocument, frozenset[str]]] = []

    def prepared(item: Item) -> tuple[MatchDocument, frozenset[str]]:
        # One read of the memo: another thread may replace it meanwhile.
        memo = last[0] if last else None
        if memo is not None and memo[0] is item:
            return memo[1], memo[2]
        doc = _document(item)
        candidates = compiled.candidates(doc)
        last[:] = [(item, doc, candidates)]
        return doc, candidates

    def matcher(topic: TopicMatcher) -> Callable[[Item], bool]:
        name, timed = topic.name, topic.needs_now

        def matches(item: Item) -> bool:
            doc, candidates = prepared(item)
            if name not in candidates:
                return False
            return topic.matches(doc, clock() if timed else None)

        return matches

    return {name: matcher(topic) for name, topic in compiled.topics.items()}


def matched_topics(
    items: Sequence[Item], topics: Sequence[TopicSpec], now: datetime
) -> tuple[frozenset[str], ...]:
    """The topics each item matches at ``now``, as the store's predicates would answer."""
    matchers = build_matchers(topics, clock=lambda: now)
    return tuple(matchers.matching_many(items, matchers.keys()))
