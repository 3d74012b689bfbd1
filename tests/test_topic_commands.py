"""`aggregator preview` and `aggregator explain` on the user's sample seed, as subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import run_cli as run
from .conftest import shared_path

CONFIG = """data_dir: var
sources:
  - {name: seeds, path: seeds, tags: [world]}
topics:
  - {name: karabakh, query: Nagorno-Karabakh AND Azerbaijan}
  - {name: jcpoa, query: 'title:JCPOA'}
  - name: structured
    query: {all: ['topic:karabakh'], any: ['/minsk group/i', 'title:/^breaking/i']}
    sources: ['tag:world']
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for the module: every command here only reads (one test checks that)."""
    sample_seed = shared_path("seeds", "000_a42e47609101a1fc.txt")
    tmp_path = tmp_path_factory.mktemp("topic-commands")
    (tmp_path / "seeds").mkdir()
    shutil.copy2(sample_seed, tmp_path / "seeds" / sample_seed.name)
    path = tmp_path / "aggregator.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    assert run(path, "update").returncode == 0
    return path


def ok(config: Path, *args: str) -> str:
    proc = run(config, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_preview_on_the_sample_seed(config: Path) -> None:
    found = json.loads(
        ok(config, "preview", "--query", "Nagorno-Karabakh AND Azerbaijan", "--json")
    )
    assert found["count"] == 1
    (story,) = found["stories"]
    assert story["title"].startswith("Iranian Deputy Foreign Minister")
    assert story["sources"] == ["seeds"]
    assert story["id"].startswith("urn:uuid:")
    assert story["published"]
    # The clauses that matched, with the field each matched in and the words.
    assert {(c["clause"], c["field"], c["matched"]) for c in story["clauses"]} == {
        ('"nagorno karabakh"', "content", "nagorno karabakh"),
        ("azerbaijan", "content", "azerbaijan"),
    }
    # JCPOA is only in the "Read More" headlines, never in the title.
    assert json.loads(ok(config, "preview", "--query", "title:JCPOA", "--json")) == {
        "count": 0,
        "stories": [],
    }
    text = ok(config, "preview", "--query", "Nagorno-Karabakh AND Azerbaijan")
    assert text.splitlines()[0] == '1 stories match "nagorno karabakh" AND azerbaijan'
    assert "azerbaijan -> content: azerbaijan" in text


def test_preview_changes_nothing(config: Path) -> None:
    before = config.read_bytes()
    counts = {t["name"]: t["stories"] for t in json.loads(ok(config, "topics", "--json"))}
    ok(config, "preview", "--query", "JCPOA")
    ok(config, "preview", "--topic", "jcpoa", "--query", "JCPOA")
    assert config.read_bytes() == before
    after = {t["name"]: t["stories"] for t in json.loads(ok(config, "topics", "--json"))}
    assert after == counts == {"karabakh": 1, "jcpoa": 0, "structured": 1}


def test_preview_a_topic_or_a_query_in_its_place(config: Path) -> None:
    assert json.loads(ok(config, "preview", "--topic", "structured", "--json"))["count"] == 1
    # A trial query in a topic's place keeps the topic's scope and sees the other topics.
    trial = ["preview", "--topic", "structured", "--json", "--query"]
    assert json.loads(ok(config, *trial, "topic:karabakh age:<1d"))["count"] == 1
    far = ["--now", "2099-01-01T00:00:00+00:00"]
    assert json.loads(ok(config, *trial, "topic:karabakh age:<1d", *far))["count"] == 0
    limited = json.loads(ok(config, "preview", "--query", "iran", "--limit", "0", "--json"))
    assert limited == {"count": 1, "stories": []}


def test_explain_says_which_fields_matched(config: Path) -> None:
    (story,) = json.loads(ok(config, "explain", "karabakh", "--json"))
    assert story["matched"] is True
    assert story["reasons"] == [
        'content contains "nagorno karabakh"',
        'content contains "azerbaijan"',
    ]
    text = ok(config, "explain", "structured", story["id"])
    lines = text.splitlines()
    assert lines[0].startswith("topic structured: topic:karabakh AND (/minsk group/i OR ")
    assert lines[1].startswith(f"in  {story['id']}")
    assert "      /minsk group/i -> content: Minsk Group" in lines
    out = ok(config, "explain", "jcpoa", story["id"])
    assert out.splitlines()[1].startswith(f"out {story['id']}")
    assert "      because no match for title:jcpoa" in out.splitlines()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("explain", "nope"), "unknown topic 'nope' (topics: karabakh, jcpoa, structured)"),
        (("explain", "karabakh", "urn:uuid:nope"), "no story 'urn:uuid:nope'"),
        (("preview", "--query", "(Karabakh"), "--query: unclosed '(' at column 1"),
        (("preview", "--query", "/(a)\\1/"), "--query: pattern refused"),
        (("preview", "--query", "topic:nope"), "--query: unknown topic 'nope' in topic:nope"),
        (("preview", "--topic", "karabakh", "--query", "topic:structured"), "makes a cycle"),
        (("preview",), "give a query (--query) or a topic"),
        (("preview", "--query", "x", "--now", "soon"), "--now: not an ISO time: 'soon'"),
    ],
)
def test_errors_are_one_line_exit_2(config: Path, args: tuple[str, ...], message: str) -> None:
    proc = run(config, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("aggregator: error: ")
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1
