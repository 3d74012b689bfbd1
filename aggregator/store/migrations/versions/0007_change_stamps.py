"""Change stamps: publishing finds what moved in a topic without reading all of it.

``stories.version`` becomes the store's change stamp at the story's last change
(a counter in ``counters``, one value per write transaction); a topic
membership records the stamp it was made at and the story's ``published``
date, so a topic's stories are read in order, and counted above a point, from
one index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # SQLite's INTEGER holds 64 bits already; and a batch alter there
        # would copy and drop ``stories``, whose drop cascades to every entry.
        op.alter_column("stories", "version", type_=sa.BigInteger(), existing_nullable=False)
    op.create_index("ix_stories_version", "stories", ["version"])
    with op.batch_alter_table("story_topics") as batch:
        batch.add_column(sa.Column("published", UTCDateTime()))
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE story_topics SET published = "
        "(SELECT stories.published FROM stories WHERE stories.id = story_topics.story_id)"
    )
    op.create_index("ix_story_topics_order", "story_topics", ["topic", "published", "story_id"])
    op.create_index("ix_story_topics_seq", "story_topics", ["topic", "seq"])


def downgrade() -> None:
    op.drop_index("ix_story_topics_seq", "story_topics")
    op.drop_index("ix_story_topics_order", "story_topics")
    with op.batch_alter_table("story_topics") as batch:
        batch.drop_column("seq")
        batch.drop_column("published")
    op.drop_index("ix_stories_version", "stories")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("stories", "version", type_=sa.Integer(), existing_nullable=False)
    op.drop_table("counters")
