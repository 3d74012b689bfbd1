"""Sources can be disabled (config, or put to rest when dead) and carry rules' drop counts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch alter would recreate the table.
    op.add_column(
        "sources", sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("sources", sa.Column("failing_since", UTCDateTime()))
    op.add_column("sources", sa.Column("disabled_at", UTCDateTime()))
    op.add_column("sources", sa.Column("disabled_reason", sa.Text()))
    op.add_column("sources", sa.Column("keep_stories", sa.Boolean()))
    op.create_table(
        "source_rules",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("unkept", sa.Integer(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_source_rules"),
    )


def downgrade() -> None:
    op.drop_table("source_rules")
    with op.batch_alter_table("sources") as batch:
        for column in (
            "keep_stories",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "enabled",
        ):
            batch.drop_column(column)
