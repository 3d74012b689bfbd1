"""What a new user met in the first hour (issue 23), each driven as the user drives it: the CLI.

Two seed folders stand for two sources carrying the same story: the sample
seed in ``ledger``, a copy of its body in ``my-seeds``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from .conftest import run_cli, shared_path
from .daemonkit import free_port, get, running, wait_for

ATOM = "{http://www.w3.org/2005/Atom}"

SAMPLE = "000_a42e47609101a1fc.txt"
COPY = "001_bbbbbbbbbbbbbbbb.txt"
EXTRA = (
    "\nThe conference also heard from scholars of the region who spoke about water rights, "
    "trade corridors and the refugees still waiting to go home after decades away from "
    "their villages in the valleys.\n"
)
UNRELATED = (
    "Sourdough bakery opens downtown\n\n"
    "A new bakery selling sourdough loaves opened on the high street this morning, with "
    "queues around the block before the doors opened at seven. The owner said the starter "
    "had been in the family for forty years and that the ovens were bought from a closing "
    "bakery in the next town.\n"
)


def ok(config: Path, *args: str) -> str:
    proc = run_cli(config, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def stories(config: Path, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(ok(config, "stories", "--json", *args))
    return found


def sample_body() -> str:
    """The sample seed without its "Read More" list: the article a copy repeats."""
    text = shared_path("seeds", SAMPLE).read_text(encoding="utf-8")
    return text.split("Read More:")[0]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ledger").mkdir()
    (tmp_path / "mine").mkdir()
    shutil.copy2(shared_path("seeds", SAMPLE), tmp_path / "ledger" / SAMPLE)
    return tmp_path


def write_config(root: Path, topics: str, extra: str = "") -> Path:
    path = root / "aggregator.yaml"
    path.write_text(
        "data_dir: var\n"
        "sources:\n"
        "  - {name: ledger, path: ledger, tags: [europe]}\n"
        "  - {name: my-seeds, path: mine}\n"
        f"topics:\n{topics}{extra}",
        encoding="utf-8",
    )
    return path


def test_a_story_stays_in_a_source_scoped_topic_when_another_copy_becomes_its_main_entry(
    workspace: Path,
) -> None:
    """Item 1: which entry represents a story must not change its topics."""
    config = write_config(
        workspace, "  - {name: scoped, query: Azerbaijan, sources: ['tag:europe']}\n"
    )
    ok(config, "update")
    (before,) = stories(config, "--topic", "scoped")
    # A fuller near-copy from a source outside the scope joins and becomes canonical.
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    ok(config, "update")
    (story,) = stories(config)
    assert story["canonical"]["source"] == "my-seeds"
    assert story["id"] == before["id"]
    assert story["topics"] == ["scoped"]
    assert [s["id"] for s in stories(config, "--topic", "scoped")] == [before["id"]]
    verdict = json.loads(ok(config, "explain", "scoped", story["id"], "--json"))
    assert verdict[0]["matched"] is True


def test_an_entry_whose_text_changes_is_placed_again(workspace: Path) -> None:
    """Item 2: a merge does not outlive the text that made it."""
    config = write_config(
        workspace,
        "  - {name: caucasus, query: Azerbaijan}\n  - {name: bread, query: sourdough}\n",
    )
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    ok(config, "update")
    (merged,) = stories(config)
    assert len(merged["entries"]) == 2
    # The copy is rewritten into an unrelated article.
    (workspace / "mine" / COPY).write_text(UNRELATED, encoding="utf-8")
    ok(config, "update")
    by_topic = {s["topics"][0]: s for s in stories(config)}
    assert set(by_topic) == {"caucasus", "bread"}
    caucasus, bread = by_topic["caucasus"], by_topic["bread"]
    # The story the untouched article is in keeps its id and its topic.
    assert caucasus["id"] == merged["id"]
    assert [e["source"] for e in caucasus["entries"]] == ["ledger"]
    assert [e["source"] for e in bread["entries"]] == ["my-seeds"]
    assert bread["id"] != merged["id"]
    joins = json.loads(ok(config, "stories", "--explain", caucasus["id"], "--json"))
    assert {j["source"] for j in joins["entries"]} == {"ledger"}


def test_rebuild_keeps_the_id_of_the_story_as_it_was_published(workspace: Path) -> None:
    """Item 3: a story that persists through ``stories --rebuild`` keeps its id."""
    (workspace / "ledger" / SAMPLE).unlink()
    # A short copy comes first and founds the story; the full article joins it
    # and becomes what the story is published as.
    half = sample_body().split("Stating that")[0]
    (workspace / "mine" / COPY).write_text(half, encoding="utf-8")
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan OR Araghchi}\n")
    ok(config, "update")
    shutil.copy2(shared_path("seeds", SAMPLE), workspace / "ledger" / SAMPLE)
    ok(config, "update")
    (story,) = stories(config)
    assert story["canonical"]["source"] == "ledger"
    assert len(story["entries"]) == 2
    # Stricter settings split the two tellings apart.
    config = write_config(
        workspace,
        "  - {name: caucasus, query: Azerbaijan OR Araghchi}\n",
        "dedup: {enabled: false}\n",
    )
    ok(config, "stories", "--rebuild")
    after = {s["canonical"]["source"]: s for s in stories(config)}
    assert set(after) == {"ledger", "my-seeds"}
    assert after["ledger"]["id"] == story["id"]
    assert after["my-seeds"]["id"] != story["id"]


def entry_ids(base: str, topic: str) -> list[str]:
    status, body = get(f"{base}topics/{topic}.atom")
    if status != 200:
        return []
    feed = ElementTree.fromstring(body)
    return [e.findtext(f"{ATOM}id") or "" for e in feed.iter(f"{ATOM}entry")]


def test_a_command_that_changes_the_store_reaches_the_running_daemon(workspace: Path) -> None:
    """Item 4: ``stories --rebuild`` beside a daemon shows in what it serves, no signal needed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    server = f"server: {{host: 127.0.0.1, port: {port}}}\n"
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan}\n", server)
    # The same store, with near-duplicate matching off: a rebuild splits the story.
    strict = workspace / "strict.yaml"
    strict.write_text(
        config.read_text(encoding="utf-8") + "dedup: {enabled: false}\n", encoding="utf-8"
    )
    with running(config) as daemon, daemon.diagnosed():
        wait_for(lambda: len(entry_ids(base, "caucasus")) == 1, 120, "the merged story served")
        ok(strict, "stories", "--rebuild")
        wait_for(lambda: len(entry_ids(base, "caucasus")) == 2, 60, "the split stories served")
        assert "the store changed outside this daemon" in daemon.log()
