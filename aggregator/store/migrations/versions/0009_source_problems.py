"""Sources keep the problems of their last read (a seed file that is empty, a feed read leniently).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06

Numbered 0009: 0008 is reserved for another branch, which this one will be
rechained after when both are merged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch alter would recreate the table.
    op.add_column("sources", sa.Column("problems", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("problems")
