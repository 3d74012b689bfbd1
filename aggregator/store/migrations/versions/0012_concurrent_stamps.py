"""PostgreSQL change stamps without a counter row: the transaction id plus an offset.

Several workers write at once; an ``UPDATE counters`` per transaction made
every one of them wait for the others' commits. The stamp becomes
``pg_current_xact_id() + stamp_offset`` (see :mod:`aggregator.store.stamps`);
the offset keeps new stamps above every stamp already stored. Sequence
``change_count`` counts the stamped transactions (for ``foreign_changes``).
SQLite keeps its counter row (one writer at a time); nothing changes there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE stamp_offset MINVALUE 0 START 0")
    op.execute("CREATE SEQUENCE change_count MINVALUE 0 START 1")
    op.execute(
        "SELECT setval('stamp_offset', GREATEST(0, 1 - pg_current_xact_id()::text::bigint + "
        "GREATEST((SELECT max(value) FROM counters WHERE name = 'change'), "
        "(SELECT max(version) FROM stories), (SELECT max(seq) FROM story_topics), 0)))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Back to the counter row, above every stamp taken since.
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'change', "
        "GREATEST((SELECT max(version) FROM stories), (SELECT max(seq) FROM story_topics), 0) + 1 "
        "ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, EXCLUDED.value)"
    )
    op.execute("DROP SEQUENCE change_count")
    op.execute("DROP SEQUENCE stamp_offset")
