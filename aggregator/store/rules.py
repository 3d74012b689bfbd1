"""Sources' rules in the store: what they dropped at ingest, and re-applying a changed rule.

The ``source_rules`` row of a source holds the signature of the rules its
stored entries were last checked with, the drops counted since, and the last
few drops as examples. A rule that changed (or came, or went) is re-applied to
the source's stored entries: those it now drops are removed (tombstoned as
deleted, so a later, looser rule lets them come back under their story id),
and the source's validators and seed-file records are forgotten, so its next
poll reads everything again and entries the old rule dropped can come in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import RuleDrop, utc
from aggregator.store import entries as entry_ops
from aggregator.store import files as file_ops
from aggregator.store.database import Database
from aggregator.store.rows import ITEM_COLUMNS, item_from_row
from aggregator.store.schema import entries, source_rules, sources
from aggregator.store.values import IngestReport, RuleJudge, RuleStats, TopicMatchers

__all__ = ["EXAMPLES_KEPT", "SourceRulesLog"]

#: drops kept as examples per source
EXAMPLES_KEPT = 5


def _example(drop: RuleDrop, at: datetime) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "rule": drop.rule,
        "title": drop.title,
        "link": drop.link,
        "reason": drop.reason,
    }


class SourceRulesLog:
    """The ``source_rules`` table: signatures, drop counts and examples."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_drops(self, source: str, drops: Sequence[RuleDrop], *, now: datetime) -> None:
        """Count an update's drops and keep the newest as examples."""
        if not drops:
            return
        now = utc(now)
        with self._db.write() as conn:
            _count(conn, source, drops, now)

    def rule_stats(self) -> dict[str, RuleStats]:
        """Each source's drop counts and examples, by name."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(source_rules)).all()
        return {
            r.source: RuleStats(r.blocked, r.unkept, tuple(r.examples or ()), r.changed_at)
            for r in rows
        }

    def sync_rules(
        self,
        signatures: Mapping[str, str],
        judge: RuleJudge,
        *,
        now: datetime,
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Re-apply the rules of every source whose signature changed; see the module.

        Args:
            signatures: source name -> ``SourceRules.signature`` ("" for none),
                for every configured source.
            judge: what the source's rules drop among its stored items.
            now: the time of the sync (aware).
            matchers: the topics' predicates, for stories left with fewer entries.

        Returns:
            What removing the newly dropped entries changed.
        """
        now = utc(now)
        report = IngestReport()
        with self._db.read() as conn:
            query = sa.select(source_rules.c.source, source_rules.c.signature)
            stored: dict[str, str] = {r.source: r.signature for r in conn.execute(query)}
        changed = [n for n, sig in signatures.items() if stored.get(n, "") != sig]
        gone = [n for n in stored if n not in signatures]
        for name in changed:
            report += self._reapply(name, signatures[name], judge, now, matchers)
        if gone:
            with self._db.write() as conn:
                conn.execute(source_rules.delete().where(source_rules.c.source.in_(gone)))
        return report

    def _reapply(
        self,
        name: str,
        signature: str,
        judge: RuleJudge,
        now: datetime,
        matchers: TopicMatchers | None,
    ) -> IngestReport:
        columns = [entries.c[c] for c in ITEM_COLUMNS]
        with self._db.read() as conn:
            rows = conn.execute(sa.select(*columns).where(entries.c.source == name)).all()
        dropped = judge(name, [item_from_row(r) for r in rows]) if signature and rows else []
        with self._db.write() as conn:
            conn.execute(source_rules.delete().where(source_rules.c.source == name))
            report = entry_ops.remove(
                conn, name, [i for i, _ in dropped], now=now, reason="deleted", matchers=matchers
            )
            if signature:
                conn.execute(
                    source_rules.insert().values(
                        source=name,
                        signature=signature,
                        blocked=0,
                        unkept=0,
                        examples=[],
                        changed_at=now,
                    )
                )
                _count(conn, name, [d for _, d in dropped], now)
            # Read everything again at the next poll: what the old rule
            # dropped may pass the new one.
            conn.execute(
                sources.update()
                .where(sources.c.name == name)
                .values(etag=None, last_modified=None, body_hash=None, next_due_at=None)
            )
            file_ops.delete_source(conn, name)
        return report


def _count(conn: Connection, source: str, drops: Sequence[RuleDrop], now: datetime) -> None:
    """Add drops to the source's counts and examples, inside the caller's transaction."""
    row = conn.execute(sa.select(source_rules).where(source_rules.c.source == source)).first()
    if row is None:
        return  # no rules row: the source's rules were synced away meanwhile
    newest = [_example(d, now) for d in reversed(drops)]
    conn.execute(
        source_rules.update()
        .where(source_rules.c.source == source)
        .values(
            blocked=row.blocked + sum(1 for d in drops if d.rule == "block"),
            unkept=row.unkept + sum(1 for d in drops if d.rule == "keep"),
            examples=(newest + list(row.examples or ()))[:EXAMPLES_KEPT],
        )
    )
