"""Poll history: one row per poll of a source, the last 200 of each kept.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_history",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(100)),
        sa.PrimaryKeyConstraint("id", name="pk_poll_history"),
    )
    op.create_index("ix_poll_history_at", "poll_history", ["at"])
    op.create_index("ix_poll_history_source_id", "poll_history", ["source", "id"])


def downgrade() -> None:
    op.drop_index("ix_poll_history_source_id", table_name="poll_history")
    op.drop_index("ix_poll_history_at", table_name="poll_history")
    op.drop_table("poll_history")
