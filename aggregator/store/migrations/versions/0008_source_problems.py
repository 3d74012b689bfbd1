"""Sources keep the problems of their last read (a seed file that is empty, a feed read leniently).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch alter would recreate the table.
    op.add_column("sources", sa.Column("problems", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("problems")
