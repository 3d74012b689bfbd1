"""The README's examples run as written (issue 23): its configuration example and its commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import REPO, invoke_cli, run_cli

README = REPO / "README.md"


def _block_after(heading: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_configuration_example_loads_as_copied(tmp_path: Path) -> None:
    """Copied into config/aggregator.yaml beside a seeds/ folder, it passes ``check --strict``."""
    (tmp_path / "config").mkdir()
    (tmp_path / "seeds").mkdir()
    config = tmp_path / "config" / "aggregator.yaml"
    config.write_text(_block_after("## Configuration", "yaml"), encoding="utf-8")
    proc = run_cli(config, "check", "--strict")
    assert proc.returncode == 0, proc.stderr
    assert "topics:   2 (caucasus, desk)" in proc.stdout


def test_global_options_are_accepted_after_the_command(tmp_path: Path) -> None:
    """``aggregator check --config x`` as the README writes it."""
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    other = tmp_path / "elsewhere.yaml"
    other.write_text("data_dir: other\nsources: []\ntopics: []\n", encoding="utf-8")
    proc = run_cli(config, "check", "--config", str(other), "--log-level", "error")
    assert proc.returncode == 0, proc.stderr
    assert f"config:   {other}: ok" in proc.stdout
    assert f"data dir: {tmp_path / 'other'}" in proc.stdout


def _command_rows() -> list[str]:
    """The first cell of each row of the README's command table (``aggregator ...``)."""
    text = README.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `aggregator ")]
    cells = [row.split(" | ")[0] for row in rows]
    assert len(cells) >= 15, cells
    return cells


def test_every_option_in_the_command_table_exists(tmp_path: Path) -> None:
    """Each command's ``--help``, or the global ``--help``, lists every option its row shows.

    Global options (``--log-format``) are accepted after the command too
    (:func:`test_global_options_are_accepted_after_the_command`).
    """
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    top = run_cli(config, "--help")
    assert top.returncode == 0, top.stderr
    for cell in _command_rows():
        command = cell.split()[2].rstrip("`")
        options = set(re.findall(r"(--[a-z][a-z-]*)", cell))
        code, out, err = invoke_cli(config, command, "--help")  # in this process: 2 s, not 12
        assert code == 0, (cell, err)
        missing = {o for o in options if o not in out and o not in top.stdout}
        assert not missing, f"{cell}: --help lacks {sorted(missing)}"


def test_the_commands_of_the_table_run_as_written(tmp_path: Path) -> None:
    """On a copy of the shipped config and seeds, each command that ends by itself runs, exit 0.

    ``run``, ``serve`` and ``worker`` run until stopped and ``migrate`` needs PostgreSQL: the
    daemon, serving, worker and migrate tests run those; ``discover`` needs a page to read
    (tests/test_discover.py). Every other row runs here with each of its options.
    """
    import shutil

    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    config = tmp_path / "config" / "aggregator.yaml"
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>'
        '<outline text="Wire" type="rss" xmlUrl="https://wire.example.org/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )

    def ok(*args: str) -> str:
        code, out, err = invoke_cli(config, *args)
        assert code == 0, (args, out[-500:], err[-2000:])
        return out

    # The first commands through the installed entry point, the rest in this
    # process: forty interpreters starting cost half a minute of the suite.
    for args in (("check", "--strict"), ("config-schema",), ("update", "--json")):
        proc = run_cli(config, *args)
        assert proc.returncode == 0, (args, proc.stdout[-500:], proc.stderr[-2000:])
    ok("update", "--source", "seeds")
    ok("publish")
    ok("publish", "--out", str(tmp_path / "out"))
    ok("sources")
    ok("sources", "--json")
    topic = json.loads(ok("topics", "--json"))[0]["name"]
    ok("topics")
    ok("status")
    ok("status", "--json")
    when = "2030-01-01T00:00:00Z"
    ok("preview", "--query", "armenia", "--topic", topic, "--limit", "5", "--json", "--now", when)
    stories = json.loads(ok("stories", "--topic", topic, "--json"))
    ok("stories")
    story = stories[0]["id"]
    ok("explain", topic)
    ok("explain", topic, story, "--json", "--now", when)
    ok("stories", "--explain", story)
    ok("stories", "--rebuild")
    every = json.loads(ok("stories", "--json"))
    joined = next((s for s in every if len(s["entries"]) > 1), None)
    if joined is not None:
        entry = joined["entries"][-1]
        ok("stories", "split", joined["id"], f"{entry['source']}:{entry['identity']}")
    ok("stories", "merge", every[0]["id"], every[-1]["id"])
    ok("stories", "hide", story, "--topic", topic)
    ok("stories", "hide", story)
    ok("stories", "pin", story, "--topic", topic, "--until", when)
    ok("export-opml", "--out", str(tmp_path / "sources.opml"))
    ok("import-opml", str(opml), "--into", str(tmp_path / "config" / "sources.d" / "feeds.yaml"))
    ok("check", "--strict")  # the imported source loads
    ok("disable", "seeds")
    ok("enable", "seeds")
    ok("explain", "--source", "seeds")
    ok("explain", "--source", "seeds", "--json")
    ok("remove", "wire", "--keep-stories")
    ok("check", "--strict")
