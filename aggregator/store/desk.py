"""The stories' commands over a store: listing, explain, ``--rebuild``, an editor's decisions.

One component of :class:`aggregator.store.sql.SQLStore`, as its sources,
entries and topics are: each method is one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from aggregator.model import NearDupSettings, utc
from aggregator.store import edits
from aggregator.store import entries as entry_ops
from aggregator.store import stories as story_index
from aggregator.store.database import Database
from aggregator.store.edits import enforce
from aggregator.store.rebuild import RebuildReport, rebuild
from aggregator.store.values import TopicMatchers

__all__ = ["RebuildReport", "StoryDesk", "enforce"]


class StoryDesk:
    """What ``aggregator stories`` reads and writes."""

    def __init__(self, db: Database, near: NearDupSettings) -> None:
        self.db = db
        self.near = near

    def find_story_ids(self, text: str, *, limit: int = 10) -> list[str]:
        """The stories ``text`` names: a whole id, with or without ``urn:uuid:``, or its start.

        Returns:
            The id itself when it is stored, else (sorted, at most ``limit``)
            every id that starts with ``text`` or with ``urn:uuid:`` + ``text``.
        """
        with self.db.read() as conn:
            return story_index.find_story_ids(conn, text, limit=limit)

    def story_rows(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Every story (or a topic's) with its topics and entries, oldest first.

        Each entry names its source, identity (the guid or atom:id as the
        source published it), canonical link, origin and, for seed files,
        the file's path relative to its folder (``path``).
        """
        with self.db.read() as conn:
            rows = story_index.story_rows(conn, topic)
            paths = story_index.seed_paths(conn)
        for story in rows:
            for entry in story["entries"]:
                entry["path"] = paths.get((entry["source"], entry["identity"]))
        return rows

    def story_joins(self, story_id: str) -> list[dict[str, Any]]:
        """How each entry of a story joined it: rule, matched entry, scores."""
        with self.db.read() as conn:
            return story_index.join_rows(conn, story_id)

    def rebuild_stories(
        self, *, now: datetime, matchers: TopicMatchers
    ) -> tuple[RebuildReport, frozenset[str]]:
        """Re-cluster every entry with the current dedup settings, in one transaction.

        Ids are kept where a cluster persists (see :func:`aggregator.store.rebuild.rebuild`).

        Returns:
            The counts and the topics whose documents changed.
        """
        now = utc(now)

        def refresh(conn: Connection, story_id: str) -> frozenset[str]:
            return entry_ops.recanonicalise(
                conn, story_id, now=now, matchers=matchers, rematch=True
            )

        with self.db.write() as conn:
            report, dirty = rebuild(conn, self.near, now=now, refresh=refresh)
            # The editor's splits and merges are replayed over the new clustering.
            return report, dirty | edits.reapply(conn, now=now, matchers=matchers)

    def edit_story(
        self, kind: str, story_id: str, *, now: datetime, matchers: TopicMatchers, **args: Any
    ) -> tuple[str, frozenset[str]]:
        """An editor's decision (``split``, ``merge``, ``hide``, ``pin``), kept and applied.

        Returns:
            The story the decision leaves (the split-off one, the merge's
            winner, else ``story_id``) and the topics whose documents changed.
        """
        now = utc(now)
        with self.db.write() as conn:
            if kind == "split":
                return edits.split(
                    conn, story_id, args["source"], args["identity"], now=now, matchers=matchers
                )
            if kind == "merge":
                return edits.merge_two(conn, story_id, args["other"], now=now, matchers=matchers)
            if kind == "hide":
                return story_id, edits.hide(conn, story_id, args.get("topic"), now=now)
            if kind == "pin":
                until = utc(args["until"]) if args.get("until") else None
                return story_id, edits.pin(conn, story_id, args["topic"], until, now=now)
        raise ValueError(f"unknown story edit {kind!r}")

    def story_edits(self, story_id: str) -> list[dict[str, Any]]:
        """The editor's decisions that name a story, oldest first."""
        with self.db.read() as conn:
            return edits.edit_rows(conn, story_id)
