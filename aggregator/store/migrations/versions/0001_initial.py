"""Initial schema: sources, files, stories, entries, story_topics, topics, tombstones.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("configured", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_outcome", sa.String(20)),
        sa.Column("last_attempt_at", UTCDateTime()),
        sa.Column("last_success_at", UTCDateTime()),
        sa.Column("next_due_at", UTCDateTime()),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error_class", sa.String(100)),
        sa.Column("last_error", sa.Text()),
        sa.Column("retry_after", UTCDateTime()),
        sa.Column("moved_to", sa.Text()),
        sa.Column("moved_seen", sa.Integer(), nullable=False),
        sa.Column("url_history", sa.JSON(), nullable=False),
        sa.Column("discovered_feed", sa.Text()),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sources"),
    )
    op.create_index("ix_sources_next_due_at", "sources", ["next_due_at"])
    op.create_table(
        "files",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("relpath", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("identities", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("source", "relpath", name="pk_files"),
    )
    op.create_table(
        "stories",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("canonical_source", sa.String(200), nullable=False),
        sa.Column("canonical_identity", sa.Text(), nullable=False),
        sa.Column("published", UTCDateTime(), nullable=False),
        sa.Column("updated", UTCDateTime(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stories"),
    )
    op.create_table(
        "entries",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("story_id", sa.String(100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text()),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("published", UTCDateTime(), nullable=False),
        sa.Column("updated", UTCDateTime(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(35)),
        sa.Column("dateline", sa.JSON()),
        sa.Column("related", sa.JSON(), nullable=False),
        sa.Column("origin", sa.JSON()),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("link_key", sa.Text()),
        sa.Column("content_key", sa.String(64)),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"], name="fk_entries_story_id_stories", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("source", "identity", name="pk_entries"),
    )
    op.create_index("ix_entries_story_id", "entries", ["story_id"])
    op.create_index("ix_entries_link_key", "entries", ["link_key"])
    op.create_index("ix_entries_content_key", "entries", ["content_key"])
    op.create_table(
        "story_topics",
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("story_id", sa.String(100), nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name="fk_story_topics_story_id_stories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("topic", "story_id", name="pk_story_topics"),
    )
    op.create_index("ix_story_topics_story_id", "story_topics", ["story_id"])
    op.create_table(
        "topics",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_topics"),
    )
    op.create_table(
        "tombstones",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("story_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "identity", name="pk_tombstones"),
    )


def downgrade() -> None:
    for table in ("tombstones", "topics", "story_topics", "entries", "stories", "files", "sources"):
        op.drop_table(table)
