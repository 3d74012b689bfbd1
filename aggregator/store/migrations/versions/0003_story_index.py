"""Story index: LSH band rows of each entry's text, and how each entry joined its story.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_index",
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("entry_key", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("band", "entry_key", name="pk_story_index"),
    )
    op.create_index("ix_story_index_entry_key", "story_index", ["entry_key"])
    op.create_table(
        "story_joins",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("entry_key", sa.BigInteger(), nullable=False),
        sa.Column("story_id", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(20), nullable=False),
        sa.Column("matched_source", sa.String(200)),
        sa.Column("matched_identity", sa.Text()),
        sa.Column("containment", sa.Float()),
        sa.Column("resemblance", sa.Float()),
        sa.Column("reason", sa.Text()),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "identity", name="pk_story_joins"),
        sa.UniqueConstraint("entry_key", name="uq_story_joins_entry_key"),
    )
    op.create_index("ix_story_joins_story_id", "story_joins", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_story_joins_story_id", table_name="story_joins")
    op.drop_table("story_joins")
    op.drop_index("ix_story_index_entry_key", table_name="story_index")
    op.drop_table("story_index")
