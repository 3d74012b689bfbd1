"""Run a topic or a trial query over the stored stories: ``preview`` and ``explain``.

Read-only: it opens the store without syncing the config into it, so trying a
query never changes a topic's membership, and it compiles the trial query
beside the configured topics so ``topic:`` references resolve as they would
in the config.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.config import Config
from aggregator.errors import ConfigError, QuerySyntaxError
from aggregator.model import Story, TopicSpec
from aggregator.store import SQLStore
from aggregator.topics import Explanation, TopicMatcher, compile_topics, document

__all__ = ["Verdict", "matcher_for", "verdicts"]

# Not a valid topic name in the config, so it can never clash with one.
_TRIAL = "(query)"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One story, in or out of a topic, and why."""

    story: Story
    explanation: Explanation

    @property
    def matched(self) -> bool:
        return self.explanation.matched


def matcher_for(config: Config, *, query: str | None, topic: str | None) -> TopicMatcher:
    """The matcher to run: a configured topic, a trial query, or a trial query as a topic.

    Args:
        config: the loaded config (its topics resolve ``topic:`` references).
        query: a trial query; None to run ``topic`` as configured.
        topic: a configured topic's name; with ``query``, the trial query
            replaces that topic's query and keeps its scope (sources,
            max_age, lang).

    Returns:
        The compiled matcher.

    Raises:
        ConfigError: ``topic`` is not a configured topic, or neither is given.
        QuerySyntaxError: the trial query does not compile (``path`` is
            ``--query``), or its references are unknown or make a cycle.
    """
    specs: list[TopicSpec] = list(config.topics)
    if topic is not None and config.topic(topic) is None:
        known = ", ".join(t.name for t in config.topics) or "none configured"
        raise ConfigError(f"unknown topic {topic!r} (topics: {known})", file=str(config.path))
    if query is None:
        if topic is None:
            raise ConfigError("give a query (--query) or a topic", file=str(config.path))
        return compile_topics(specs)[topic]
    if topic is None:
        name = _TRIAL
        specs.append(TopicSpec(name=_TRIAL, title=_TRIAL, query=query))
    else:
        name = topic
        specs = [replace(t, query=query) if t.name == topic else t for t in specs]
    try:
        return compile_topics(specs)[name]
    except QuerySyntaxError as exc:
        if exc.topic in (name, None):
            exc.path = "--query"
            exc.args = (f"--query: {exc.detail}",)
        raise


def verdicts(
    store: SQLStore, matcher: TopicMatcher, *, now: datetime, ids: Sequence[str] | None = None
) -> Iterator[Verdict]:
    """Every stored story (or those with ``ids``), newest first, with the matcher's verdict.

    Args:
        store: an open store.
        matcher: from :func:`matcher_for`.
        now: the time ``age:`` clauses and ``max_age`` are measured against.
        ids: only these stories; None for all.
    """
    for story in store.stories(ids):
        yield Verdict(story, _explain(matcher, story, now))


def _explain(matcher: TopicMatcher, story: Story, now: datetime) -> Explanation:
    """The verdict on a story as the store decides it: as told by any of its sources.

    A topic scoped to sources admits a story that *any* of its entries
    brings from one of them (see ``store.membership.matching_stories``).
    """
    explanation = matcher.explain(document(story.item), now)
    others = dict.fromkeys(v.source for v in story.via if v.source != story.item.source)
    for source in sorted(others):
        if explanation.matched:
            break
        told = matcher.explain(document(replace(story.item, source=source)), now)
        explanation = told if told.matched else explanation
    return explanation
