"""An editor's hand over stories, end to end: split, merge, hide, pin through the command line.

Each decision must hold after the same files are ingested again, after a
changed file is re-ingested, after ``stories --rebuild`` and after
``migrate``, and show in ``stories --explain``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner

from aggregator.cli import main

from .conftest import pg_database, run_cli
from .daemonkit import free_port, get, running, wait_for


def _article(n: int, lead: str) -> str:
    words = " ".join(f"detail{n}w{i}" for i in range(40))
    return (
        f"Survey {n} finds the glacier retreat is faster than thought\n\n"
        f"{lead} Researchers measured the front at many points "
        f"and report a loss in one season, the institute said. {words}\n\n"
        "The work is to continue next summer, the institute said.\n"
    )


def _setup(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(_article(1, "A new survey."), encoding="utf-8")
    (seeds / "a-copy.txt").write_text(_article(1, "Reported again."), encoding="utf-8")
    (seeds / "b.txt").write_text(_article(2, "Another survey."), encoding="utf-8")
    (seeds / "c.txt").write_text(_article(3, "A third survey."), encoding="utf-8")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\n"
        "ingest: {workers: 0}\n"
        "sources:\n  - {name: seeds, path: seeds}\n"
        "topics:\n"
        "  - {name: world, query: 'said OR says'}\n"
        "  - {name: picks, query: 'nothingmatchesthis'}\n",
        encoding="utf-8",
    )
    return config


def _ok(config: Path, *args: str) -> str:
    # In this process: about forty commands, each a new interpreter, took half a minute.
    done = CliRunner().invoke(main, ["--config", str(config), *args])
    assert done.exit_code == 0, (args, done.stdout, done.stderr, done.exception)
    return done.stdout


def _stories(config: Path, *args: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(_ok(config, "stories", "--json", *args))
    return data


def _by_path(config: Path) -> dict[str, str]:
    """Seed file name -> its story id."""
    return {Path(e["path"]).name: s["id"] for s in _stories(config) for e in s["entries"]}


def _identity(config: Path, name: str) -> str:
    for s in _stories(config):
        for e in s["entries"]:
            if Path(e["path"]).name == name:
                return str(e["identity"])
    raise AssertionError(name)


def _holds(config: Path, split_id: str, a: str, b: str) -> None:
    """The split, the merge, the hide and the pin all hold."""
    stories = _by_path(config)
    assert stories["a-copy.txt"] == split_id
    assert stories["a.txt"] == a != split_id
    # c and b were merged
    assert stories["c.txt"] == stories["b.txt"] == b
    world = {s["id"] for s in _stories(config, "--topic", "world")}
    assert a not in world and split_id in world
    picks = {s["id"] for s in _stories(config, "--topic", "picks")}
    assert picks == {b}


@pytest.mark.postgres
# About forty commands (in this process) and a PostgreSQL copy: a bound for a busy machine.
@pytest.mark.timeout(300)
def test_editorial_commands_hold_through_reingest_rebuild_and_migrate(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    _ok(config, "update")
    before = _by_path(config)
    a = before["a.txt"]
    assert before["a-copy.txt"] == a  # a near duplicate: one story
    b, c = before["b.txt"], before["c.txt"]
    assert b != c

    copy = _identity(config, "a-copy.txt")
    out = _ok(config, "stories", "split", a, f"seeds:{copy}")
    split_id = _by_path(config)["a-copy.txt"]
    assert split_id != a and split_id in out
    _ok(config, "stories", "merge", c, b)
    # The older story keeps its id (stored together: the smaller id).
    b = min(b, c)
    assert _by_path(config)["c.txt"] == b
    _ok(config, "stories", "hide", a, "--topic", "world")
    _ok(config, "stories", "pin", b, "--topic", "picks")
    _holds(config, split_id, a, b)

    explained = _ok(config, "stories", "--explain", a)
    assert "editor: split" in explained and "editor: hide" in explained
    shown = json.loads(_ok(config, "stories", "--explain", a, "--json"))
    assert [e["edit"] for e in shown["editor"]] == ["split", "hide"]
    assert shown["editor"][0]["other"] == split_id
    # explain TOPIC ID: the editor's hide overrides the query
    why = _ok(config, "explain", "world", a)
    assert "editor: hide (topic world): overrides the query" in why

    # The same files again, then one of them changed: nothing undone.
    _ok(config, "update")
    _holds(config, split_id, a, b)
    (tmp_path / "seeds" / "a-copy.txt").write_text(
        _article(1, "Reported again, with a correction."), encoding="utf-8"
    )
    _ok(config, "update")
    _holds(config, split_id, a, b)

    _ok(config, "stories", "--rebuild")
    _holds(config, split_id, a, b)

    # Copied into PostgreSQL, the decisions come along and still hold there.
    with pg_database() as url:
        _ok(config, "migrate", "--to", url)
        text = config.read_text(encoding="utf-8")
        config.write_text(f"store: {url}\n" + text, encoding="utf-8")
        _holds(config, split_id, a, b)
        _ok(config, "update")
        _ok(config, "stories", "--rebuild")
        _holds(config, split_id, a, b)


@pytest.mark.timeout(600)
def test_a_split_story_id_is_stable_and_bad_edits_fail_clearly(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    _ok(config, "update")
    stories = _by_path(config)
    a, b = stories["a.txt"], stories["b.txt"]
    # An entry that is not in the story named.
    proc = run_cli(config, "stories", "split", b, f"seeds:{_identity(config, 'a.txt')}")
    assert proc.returncode == 2 and "is not an entry of story" in proc.stderr
    proc = run_cli(config, "stories", "merge", a, a)
    assert proc.returncode == 2 and "cannot be merged with itself" in proc.stderr
    proc = run_cli(config, "stories", "hide", a, "--topic", "nosuch")
    assert proc.returncode != 0 and "nosuch" in proc.stderr
    proc = run_cli(config, "stories", "pin", a, "--topic", "picks", "--until", "soon")
    assert proc.returncode == 2 and "ISO 8601" in proc.stderr

    # A pin that has ended keeps the story in the topic no longer than its query does.
    _ok(config, "stories", "pin", b, "--topic", "picks", "--until", "2000-01-01T00:00:00Z")
    assert _stories(config, "--topic", "picks") == []


@pytest.mark.timeout(600)
def test_a_running_daemon_applies_an_edit_made_beside_it(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    port = free_port()
    text = config.read_text(encoding="utf-8")
    config.write_text(f"server: {{host: 127.0.0.1, port: {port}}}\n" + text, encoding="utf-8")
    base = f"http://127.0.0.1:{port}/"

    def titles(topic: str) -> list[str]:
        status, body = get(f"{base}topics/{topic}.atom")
        return [e.title for e in feedparser.parse(body).entries] if status == 200 else []

    with running(config) as daemon, daemon.diagnosed():
        shown = wait_for(lambda: titles("world"), 120, "the first publish")
        assert any("Survey 2" in t for t in shown)
        b = _by_path(config)["b.txt"]
        _ok(config, "stories", "hide", b, "--topic", "world")
        _ok(config, "stories", "pin", b, "--topic", "picks")
        # The daemon sees the command's change stamps on a tick and republishes.
        wait_for(
            lambda: not any("Survey 2" in t for t in titles("world")),
            60,
            "the hidden story gone from its topic's feed",
        )
        wait_for(
            lambda: any("Survey 2" in t for t in titles("picks")),
            60,
            "the pinned story in its topic's feed",
        )
