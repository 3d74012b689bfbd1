"""The whole path as a user runs it: seeds folder -> `aggregator update` -> `aggregator publish`.

Every command runs as a real subprocess on a real SQLite file, so each run is
also a restart.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest
from reader import make_reader

from .atomcheck import A, atom_files, check_atom
from .conftest import REPO

TOPICS = """
topics:
  - name: karabakh
    title: Nagorno-Karabakh
    query: Nagorno-Karabakh
  - name: jcpoa
    title: JCPOA
    query: JCPOA
  - name: everything
    title: Everything
    query: 'a OR the OR of OR and OR to OR in'
"""


def run(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env.pop("AGGREGATOR_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def workspace(tmp_path: Path, sample_seed: Path) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    shutil.copy2(sample_seed, seeds / sample_seed.name)
    (tmp_path / "aggregator.yaml").write_text(
        "data_dir: var\n"
        "server: {base_url: 'http://127.0.0.1:8080/'}\n"
        "sources:\n  - {name: seeds, path: seeds}\n" + TOPICS
    )
    return tmp_path


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def entries(path: Path) -> list:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, f"{path}: {parsed.bozo_exception}"
    return parsed.entries


def test_default_config_produces_one_valid_feed_per_topic(tmp_path: Path) -> None:
    config = tmp_path / "config" / "aggregator.yaml"
    config.parent.mkdir()
    shutil.copy2(REPO / "config" / "aggregator.yaml", config)
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    run(config, "update")
    run(config, "publish")
    public = tmp_path / "var" / "public"
    topics = ["caucasus", "iran", "climate", "technology"]
    for name in topics:
        feed = public / "topics" / f"{name}.atom"
        root = check_atom(feed.read_bytes(), name=feed.name)
        assert root.findall(A + "entry"), (
            f"{name}: the default seeds should give every topic stories"
        )


def test_sample_seed_lands_in_its_topic_cleanly(workspace: Path) -> None:
    config = workspace / "aggregator.yaml"
    run(config, "update")
    run(config, "publish")
    public = workspace / "var" / "public" / "topics"
    karabakh = entries(public / "karabakh.atom")
    sample = [e for e in karabakh if "Araghchi" in e.title or "Deputy Foreign Minister" in e.title]
    assert len(sample) == 1, [e.title for e in karabakh]
    entry = sample[0]
    content = entry.content[0].value
    assert not entry.title.startswith("Qom")
    assert "Emphasizing that" not in entry.title
    assert not entry.title.endswith(("…", "..."))
    assert "Iran PressIran News" not in content
    body = content.split("Read More")[0] if "Read More" in content else content
    for headline in (
        "New US administration willing to return to JCPOA",
        "JCPOA is worth nothing to Iran",
        "Time to preserve JCPOA is coming to an end",
    ):
        assert headline not in body
    assert "Nagorno" in content
    # JCPOA appears only in the related headlines: it must not match.
    assert not any("Araghchi" in e.title for e in entries(public / "jcpoa.atom"))


def test_every_published_document_is_valid_and_readable(workspace: Path, tmp_path: Path) -> None:
    config = workspace / "aggregator.yaml"
    run(config, "update")
    run(config, "publish")
    public = workspace / "var" / "public"
    docs = atom_files(public)
    assert docs
    for doc in docs:
        check_atom(doc.read_bytes(), name=str(doc.relative_to(public)))
    for doc in (public / "topics").glob("*.atom"):
        for e in entries(doc):
            assert e.get("title") and e.get("link") and e.get("updated_parsed"), (
                doc.name,
                e.get("id"),
            )
    # lemon24/reader, reading the published files as a subscriber would.
    reader = make_reader(str(tmp_path / "reader.sqlite"), feed_root=str(public))
    feeds = sorted((public / "topics").glob("*.atom"))
    for doc in feeds:
        reader.add_feed(str(doc.relative_to(public)))
    reader.update_feeds(scheduled=False)
    for doc in feeds:
        feed = reader.get_feed(str(doc.relative_to(public)))
        assert feed.last_exception is None, (doc.name, feed.last_exception)
        got = list(reader.get_entries(feed=feed))
        assert len(got) == len(entries(doc)), doc.name
        for e in got:
            assert e.title and e.link and (e.updated or e.published), (doc.name, e.id)
    reader.close()


def test_reruns_and_restarts_leave_files_byte_identical(workspace: Path) -> None:
    config = workspace / "aggregator.yaml"
    digests = []
    for _ in range(3):
        run(config, "update")
        run(config, "publish")
        digests.append(tree_digest(workspace / "var" / "public"))
    assert digests[0] == digests[1] == digests[2]


def test_edit_updates_story_and_delete_drops_it(workspace: Path) -> None:
    config = workspace / "aggregator.yaml"
    seed = next((workspace / "seeds").glob("000_*.txt"))
    run(config, "update")
    run(config, "publish")
    feed = workspace / "var" / "public" / "topics" / "karabakh.atom"
    [before] = [e for e in entries(feed) if "Araghchi" in e.title or "Foreign Minister" in e.title]

    text = seed.read_text(encoding="utf-8")
    seed.write_text(
        text.replace("are at their peak", "are at their strongest ever"), encoding="utf-8"
    )
    future = time.time() + 120
    os.utime(seed, (future, future))
    run(config, "update")
    run(config, "publish")
    [after] = [e for e in entries(feed) if e.id == before.id]
    assert after.updated_parsed > before.updated_parsed
    assert "strongest ever" in after.content[0].value

    seed.unlink()
    run(config, "update")
    run(config, "publish")
    assert before.id not in {e.id for e in entries(feed)}


def test_bad_files_are_reported_and_others_ingested(workspace: Path) -> None:
    config = workspace / "aggregator.yaml"
    seeds = workspace / "seeds"
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (seeds / "dangling.txt").symlink_to(workspace / "missing.txt")
    proc = run(config, "update", "--json")
    err_lines = proc.stderr.splitlines()
    for name in ("empty.txt", "binary.txt", "dangling.txt"):
        lines = [line for line in err_lines if name in line]
        assert len(lines) == 1, (name, proc.stderr)
    import json

    [result] = json.loads(proc.stdout)
    assert result["outcome"] == "ok"
    assert result["new"] >= 6
    assert len(result["problems"]) == 3


def test_broken_config_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics:\n  - name: t\n    query: '(a OR'\n")
    proc = run(bad, "update", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "topics[0].query" in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in proc.stderr


def test_check_and_schema_commands(workspace: Path) -> None:
    config = workspace / "aggregator.yaml"
    assert "topics:   3" in run(config, "check").stdout
    import json

    assert json.loads(run(config, "config-schema").stdout)["additionalProperties"] is False


def test_sources_and_topics_listings(workspace: Path) -> None:
    import json

    config = workspace / "aggregator.yaml"
    run(config, "update")
    [source] = json.loads(run(config, "sources", "--json").stdout)
    assert source["name"] == "seeds" and source["kind"] == "files" and source["items"] >= 7
    assert source["last_outcome"] == "ok" and source["last_error"] is None
    topics = {t["name"]: t for t in json.loads(run(config, "topics", "--json").stdout)}
    assert topics["karabakh"]["stories"] >= 1
    assert topics["karabakh"]["feed"] == "http://127.0.0.1:8080/topics/karabakh.atom"
