"""kill -9 the daemon at random moments during a large seed ingest, ten times: nothing is lost.

Seeds keep arriving while the daemon runs, and some are written just before
each kill, too late for the watcher: only the reconciliation at the next start
finds those. A last round kills the daemon after its ingest has finished and
its next poll is an hour away, so a restart that does not reconcile its seed
folders fails this test every time.
"""

from __future__ import annotations

import gzip
import random
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import feedparser
import pytest

from aggregator.publish._base import etag_of
from aggregator.publish.export import Manifest

from .daemonkit import (
    DaemonProcess,
    free_port,
    get,
    wait_for,
    wait_moving,
    wait_progress,
    write_seed_config,
)

SEEDS = 2000
KILLS = 10
#: seconds the final ingest may go without storing one more seed
STALL = 60


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


def last_attempt(db: Path) -> str | None:
    """When the seed folder's last update saved its state."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT last_attempt_at FROM sources WHERE name = 'seeds'").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return None if row is None or row[0] is None else str(row[0])


def check_export(public: Path) -> None:
    """Every published file is whole: each feed parses, each gzip copy decompresses whole.

    A kill in the middle of a publish may leave the manifest behind the files
    (it is written last), and a document's new gzip copy beside its old file
    (the copy is written first), never a half-written file: each file is
    renamed into place whole. What the manifest describes is exactly so.
    """
    if not public.exists():
        return
    for path in public.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".gz":
            gzip.decompress(path.read_bytes())  # raises on a truncated copy
        elif path.suffix == ".atom":
            parsed = feedparser.parse(path.read_bytes())
            assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
    manifest = Manifest.read(public)
    for entry in manifest.documents.values():
        file = public / entry.file
        if not file.exists() or file.stat().st_ino != entry.ino:
            continue  # replaced since the manifest: the next start renders it again
        body = file.read_bytes()
        assert etag_of(body) == entry.etag, entry.file
        gz = public / (entry.gz_file or "-")
        if entry.gz_file and gz.exists() and gz.stat().st_ino == entry.gz_ino:
            assert gzip.decompress(gz.read_bytes()) == body, entry.gz_file


@pytest.mark.slow
# Every wait inside is tied to progress (the store growing); this bound is only
# the safety net, sized for a busy 2-core machine (runs took 25-110 s).
@pytest.mark.timeout(600)
def test_kill_minus_nine_during_ingest_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in range(SEEDS):
        (seeds / f"{n:05d}.txt").write_text(seed(n), encoding="utf-8")
    port = free_port()
    config = write_seed_config(tmp_path, port=port, max_items=100)
    db = tmp_path / "var" / "aggregator.db"
    seen: dict[str, str] = {}
    extra = SEEDS
    #: seed numbers written just before a kill, too late for the watcher
    late: list[int] = []

    def write(count: int) -> list[int]:
        nonlocal extra
        written = list(range(extra, extra + count))
        for n in written:
            (seeds / f"{n:05d}.txt").write_text(seed(n), encoding="utf-8")
        extra += count
        return written

    def kill(daemon: DaemonProcess) -> None:
        nonlocal seen
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.wait(10)
        now = observe(db)
        # Nothing committed is ever lost, and a seed's story id never changes.
        lost = {k: v for k, v in seen.items() if now.get(k) != v}
        assert not lost, f"lost or changed after a kill: {list(lost.items())[:3]}"
        seen = now
        check_export(tmp_path / "var" / "public")

    for _round in range(KILLS):
        daemon = DaemonProcess(config)
        try:
            # New seeds keep arriving while the daemon runs (watched-folder ingest);
            # the random pauses place the kill at a different moment each round.
            time.sleep(rng.uniform(0.3, 1.2))
            write(rng.randint(5, 30))
            time.sleep(rng.uniform(0.0, 1.5))
            late += write(rng.randint(1, 5))
        finally:
            kill(daemon)
    assert len(seen) < extra, "every kill came after the ingest finished: the test proves nothing"

    # The last kill comes after the daemon finished an update of the folder:
    # its next poll is an hour away, and the files written now reach no watcher.
    before = last_attempt(db)
    daemon = DaemonProcess(config)
    try:
        # The update saves its state after storing what the kills left behind,
        # which takes minutes on a loaded machine: wait as long as seeds arrive.
        with daemon.diagnosed():
            wait_moving(
                lambda: last_attempt(db) != before,
                lambda: len(observe(db)),
                STALL,
                "an update of the seed folder",
            )
            wait_progress(lambda: len(observe(db)), extra, STALL, "the seeds before the last kill")
        late += write(20)
    finally:
        kill(daemon)

    # A final clean run ingests the rest.
    daemon = DaemonProcess(config)
    try:
        base = f"http://127.0.0.1:{port}/"

        def published() -> bool:
            status, body = get(f"{base}topics/karabakh.atom")
            return status == 200 and f"Karabakh report number {extra - 1}".encode() in body

        with daemon.diagnosed():
            wait_progress(lambda: len(observe(db)), extra, STALL, f"all {extra} seeds in the store")
            wait_for(published, 60, "the topic feed with the last seed")
        # What it serves after all those kills is whole: each body is the one its ETag names.
        for entry in Manifest.read(tmp_path / "var" / "public").documents.values():
            with urllib.request.urlopen(base + entry.path, timeout=30) as resp:
                assert resp.headers["ETag"] == etag_of(resp.read()), entry.path
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log()[-2000:]
    finally:
        daemon.kill()
    public = tmp_path / "var" / "public"
    check_export(public)
    assert not list(public.rglob(".aggregator-tmp-*")), "temp files a kill left behind"
    final = observe(db)
    missing = [n for n in late if f"seed:{n:05d}" not in final and f"path:{n:05d}.txt" not in final]
    assert not missing, f"{len(missing)} of {len(late)} seeds written just before a kill missing"
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
