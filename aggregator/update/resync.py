"""What a reload re-applies: topics whose signature changed, sources whose rules changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.model import Item, RuleDrop, SourceSpec, TopicSpec
from aggregator.store.values import RuleJudge
from aggregator.topics import compile_topics
from aggregator.topics.rules import judge

__all__ = ["rule_judge", "rule_signatures", "topic_signatures"]


def rule_signatures(sources: Sequence[SourceSpec]) -> dict[str, str]:
    """Source name -> what ``SQLStore.sync_rules`` compares to decide a re-apply ("" for none)."""
    return {s.name: s.rules.signature if s.rules else "" for s in sources}


def rule_judge(sources: Sequence[SourceSpec], now: datetime) -> RuleJudge:
    """What each source's rules drop among its stored items, at ``now``."""
    specs = {s.name: s for s in sources}

    def judge_stored(name: str, items: Sequence[Item]) -> list[tuple[str, RuleDrop]]:
        rules = specs[name].rules
        if rules is None:
            return []
        drops = [(item.identity, judge(item, rules, now=now)) for item in items]
        return [(identity, drop) for identity, drop in drops if drop is not None]

    return judge_stored


def topic_signatures(topics: Sequence[TopicSpec]) -> dict[str, str]:
    """Topic name -> what ``SQLStore.sync_topics`` compares to decide a re-match.

    A plain query is its own signature; a topic that reuses others or has a
    scope (sources, max_age, lang) signs all of it, so changing any re-matches.
    """
    return {name: topic.signature for name, topic in compile_topics(topics).items()}
