"""``aggregator migrate --to postgresql://...``: every row, every story id, every published byte."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.publish import MANIFEST_NAME
from aggregator.store.database import Database
from aggregator.store.schema import metadata

from .conftest import pg_database, run_cli
from .feedfarm import FeedsServer


def article(n: int, lead: str) -> str:
    """A seed article long enough to be sketched for near duplicates."""
    words = " ".join(f"detail{n}w{i}" for i in range(40))
    return (
        f"Survey {n} finds the glacier retreat is faster than thought\n\n"
        f"Tbilisi (GT): {lead} Researchers measured the front at many points "
        f"and report a loss in one season. {words}\n\n"
        "The work is to continue next summer, the institute said.\n"
    )


def write_config(folder: Path, store: str, feeds: FeedsServer) -> Path:
    sources = "\n".join(
        f"  - {{name: f{i:03d}, url: '{feeds.base}/f{i:03d}.xml'}}" for i in range(feeds.feeds)
    )
    config = folder / f"aggregator-{'sqlite' if store == 'sqlite' else 'pg'}.yaml"
    config.write_text(
        f"""
data_dir: var
store: {store}
allow_networks: ['127.0.0.0/8']
fetch: {{max_per_host: 20}}
ingest: {{workers: 0}}
sources:
  - {{name: seeds, path: seeds}}
{sources}
topics:
  - {{name: glacier, query: glacier}}
  - {{name: report, query: report}}
""",
        encoding="utf-8",
    )
    return config


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, through the schema's types, in a stable order."""
    db = Database.open(url)
    try:
        with db.read() as conn:
            return {
                table.name: sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
                for table in metadata.sorted_tables
            }
    finally:
        db.close()


def tree(folder: Path) -> dict[str, bytes]:
    """The published files (the manifest is the export's bookkeeping: inodes, mtimes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }


@pytest.mark.postgres
def test_migrate_keeps_every_row_id_and_published_byte(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in range(12):
        (seeds / f"story-{n:02d}.txt").write_text(article(n, "A new survey."), encoding="utf-8")
    # A near duplicate of story 0 (its words, another lead): joins story 0's story.
    (seeds / "copy-of-00.txt").write_text(article(0, "Reported again."), encoding="utf-8")
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        server = stack.enter_context(FeedsServer(20))
        embedded = write_config(tmp_path, "sqlite", server)
        assert run_cli(embedded, "update").returncode == 0
        # Deleted seed files leave tombstones (their ids come back if the files do).
        (seeds / "story-10.txt").unlink()
        (seeds / "story-11.txt").unlink()
        done = run_cli(embedded, "update")
        assert done.returncode == 0, done.stderr
        done = run_cli(embedded, "publish", "--out", str(tmp_path / "before"))
        assert done.returncode == 0, done.stderr
        sqlite_url = f"sqlite:///{tmp_path / 'var' / 'aggregator.db'}"
        before = rows(sqlite_url)
        for table in (
            "sources",
            "entries",
            "stories",
            "story_topics",
            "tombstones",
            "files",
            "story_index",
            "story_joins",
            "topics",
        ):
            assert before[table], f"the fixture left {table} empty: the test would prove nothing"

        done = run_cli(embedded, "migrate", "--to", url.replace("+psycopg", ""))
        assert done.returncode == 0, done.stderr
        assert "copied" in done.stdout

        after = rows(url)
        assert after == before
        story_ids = {r[0] for r in after["stories"]}
        assert story_ids == {r[0] for r in before["stories"]}

        migrated = write_config(tmp_path, url.replace("+psycopg", ""), server)
        done = run_cli(migrated, "publish", "--out", str(tmp_path / "after"))
        assert done.returncode == 0, done.stderr
        published, again = tree(tmp_path / "before"), tree(tmp_path / "after")
        assert sorted(published) == sorted(again)
        assert [n for n in published if published[n] != again[n]] == []

        # A second migrate into the now non-empty database is refused, changing nothing.
        done = run_cli(embedded, "migrate", "--to", url)
        assert done.returncode == 3
        assert "not empty" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert rows(url) == before

        # The copy lives on: new poll records get ids past the copied ones.
        polls = len(before["poll_history"])
        done = run_cli(migrated, "update")
        assert done.returncode == 0, done.stderr
        assert len(rows(url)["poll_history"]) > polls


def test_migrate_wants_a_postgresql_url(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\n", encoding="utf-8")
    done = run_cli(config, "migrate", "--to", f"sqlite:///{tmp_path / 'other.db'}")
    assert done.returncode == 2
    assert "--to: not a postgresql:// URL" in done.stderr
