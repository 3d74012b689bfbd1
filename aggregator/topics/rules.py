"""A source's ``rules:`` (pure): ``block`` drops the entries it matches, ``keep`` those it misses.

Both are queries in the topic language (fields, phrases, patterns, dates),
compiled by :func:`aggregator.topics.compile_query`; ``topic:`` references are
refused (a rule belongs to its source, not to the topics). ``block`` is asked
first: an entry both rules would drop counts as blocked. The rules see an
entry as its feed or seed file gives it (a ``full_content`` article is
fetched only for the entries they let through).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from aggregator.errors import QuerySyntaxError
from aggregator.model import Item, RuleDrop, SourceRules
from aggregator.topics import Query, compile_query, document

__all__ = ["check_rule", "judge", "split_by_rules"]


@lru_cache(maxsize=256)
def _compiled(text: str) -> Query:
    return compile_query(text)


def check_rule(value: str | dict[str, object]) -> str:
    """Compile a rule's query (a string, or an all/any/none mapping), as the config does at load.

    Returns:
        The query as a string (a mapping's canonical form: the same matcher).

    Raises:
        QuerySyntaxError: the query does not compile, or reuses a topic.
    """
    query = compile_query(value)
    if query.references:
        raise QuerySyntaxError(
            f"a rule cannot reuse a topic (topic:{query.references[0]}); write the query out",
            query=query.text,
            column=None,
        )
    return value if isinstance(value, str) else query.text


def judge(item: Item, rules: SourceRules, *, now: datetime) -> RuleDrop | None:
    """Whether the rules drop ``item``, and why; None when it is kept.

    Args:
        item: a normalised entry.
        rules: the source's rules (queries that compile: checked at load).
        now: the time of the ingest (for ``age:`` clauses).
    """
    doc = document(item)
    if rules.block:
        why = _compiled(rules.block).explain(doc, now)
        if why.matched:
            return RuleDrop("block", item.title, item.link, "; ".join(why.reasons))
    if rules.keep:
        why = _compiled(rules.keep).explain(doc, now)
        if not why.matched:
            reason = "; ".join(why.reasons) or "nothing matched"
            return RuleDrop("keep", item.title, item.link, f"keep did not match: {reason}")
    return None


def split_by_rules(
    items: Sequence[Item], rules: SourceRules | None, *, now: datetime
) -> tuple[list[Item], list[RuleDrop]]:
    """The items the rules keep, in order, and one drop per item they drop."""
    if rules is None:
        return list(items), []
    kept: list[Item] = []
    dropped: list[RuleDrop] = []
    for item in items:
        drop = judge(item, rules, now=now)
        if drop is None:
            kept.append(item)
        else:
            dropped.append(drop)
    return kept, dropped
