"""Stories' semantic vectors, the similarity of a semantic join, and an editor's decisions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch alter would recreate the table.
    op.add_column("story_joins", sa.Column("similarity", sa.Float()))
    op.create_table(
        "story_vectors",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_key", sa.BigInteger(), nullable=False),
        sa.Column("published", UTCDateTime(), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("scale", sa.Float(), nullable=False),
        sa.Column("code", sa.LargeBinary(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_story_vectors"),
        sa.UniqueConstraint("entry_key", name="uq_story_vectors_entry_key"),
    )
    op.create_table(
        "story_edits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("story_id", sa.String(100), nullable=False),
        sa.Column("other_story", sa.String(100)),
        sa.Column("source", sa.String(200)),
        sa.Column("identity", sa.Text()),
        sa.Column("topic", sa.String(200)),
        sa.Column("until", UTCDateTime()),
        sa.Column("made_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_story_edits"),
    )
    op.create_index("ix_story_edits_story_id", "story_edits", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_story_edits_story_id", table_name="story_edits")
    op.drop_table("story_edits")
    op.drop_table("story_vectors")
    with op.batch_alter_table("story_joins") as batch:
        batch.drop_column("similarity")
