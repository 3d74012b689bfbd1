"""kill -9 the daemon at random moments during a large seed ingest, ten times: nothing is lost."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path

import feedparser
import pytest

from .daemonkit import DaemonProcess, free_port, get, wait_for

SEEDS = 2000
KILLS = 10


def seed(n: int) -> str:
    # Distinct words per seed so no two seeds are merged into one story; a short
    # body keeps the lead under the summariser's 300 characters.
    words = " ".join(f"w{n}x{k}" for k in range(6))
    return (
        f"Karabakh report number {n}\n\n"
        f"Report {n} from the Karabakh line: observers counted {words} on patrol.\n"
    )


def observe(db: Path) -> dict[str, str]:
    """Seed identity -> story id, as committed in the store."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(conn.execute("SELECT identity, story_id FROM entries WHERE source = 'seeds'"))
    except sqlite3.OperationalError:  # killed before the first migration committed
        return {}
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_minus_nine_during_ingest_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in range(SEEDS):
        (seeds / f"{n:05d}.txt").write_text(seed(n), encoding="utf-8")
    port = free_port()
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}}}
defaults: {{interval: 1h}}
sources:
  - name: seeds
    path: seeds
topics:
  - name: karabakh
    query: Karabakh
    max_items: 100
""",
        encoding="utf-8",
    )
    db = tmp_path / "var" / "aggregator.db"
    seen: dict[str, str] = {}
    extra = SEEDS
    for _round in range(KILLS):
        daemon = DaemonProcess(config)
        try:
            # New seeds keep arriving while the daemon runs (watched-folder ingest).
            time.sleep(rng.uniform(0.3, 1.2))
            for _ in range(rng.randint(5, 30)):
                (seeds / f"{extra:05d}.txt").write_text(seed(extra), encoding="utf-8")
                extra += 1
            time.sleep(rng.uniform(0.0, 1.5))
        finally:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.wait(10)
        now = observe(db)
        # Nothing committed is ever lost, and a seed's story id never changes.
        lost = {k: v for k, v in seen.items() if now.get(k) != v}
        assert not lost, f"lost or changed after a kill: {list(lost.items())[:3]}"
        seen = now
    assert len(seen) < extra, "every kill came after the ingest finished: the test proves nothing"

    # A final clean run ingests the rest.
    daemon = DaemonProcess(config)
    try:
        wait_for(lambda: len(observe(db)) == extra, 60, f"all {extra} seeds in the store", step=0.2)
        base = f"http://127.0.0.1:{port}/"

        def published() -> bool:
            status, body = get(f"{base}topics/karabakh.atom")
            return status == 200 and b"Karabakh report number" in body

        wait_for(published, 20, "the topic feed")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, daemon.log()[-2000:]
    finally:
        daemon.kill()
    final = observe(db)
    assert all(final.get(k) == v for k, v in seen.items())
    assert len(final) == extra
    # One story per seed: no duplicates, no merges.
    assert len(set(final.values())) == extra
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == extra
    finally:
        conn.close()
    # Every published feed parses; together the topic's pages carry each story once.
    public = tmp_path / "var" / "public"
    ids: list[str] = []
    for path in sorted((public / "topics").rglob("*.atom")):
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
        ids.extend(e.id for e in parsed.entries)
    assert len(ids) == len(set(ids)) == extra
