"""Ingest engine: the last body's hash, and the dispatch claim on each source.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("body_hash", sa.Text()))
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("claim_expires_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("claim_expires_at")
        batch.drop_column("claimed_by")
        batch.drop_column("body_hash")
