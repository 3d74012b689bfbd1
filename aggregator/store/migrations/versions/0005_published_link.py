"""Entries keep their link and guid as the source wrote them (beside the canonical link).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("link_as_published", sa.Text()))
        batch.add_column(sa.Column("guid", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("guid")
        batch.drop_column("link_as_published")
