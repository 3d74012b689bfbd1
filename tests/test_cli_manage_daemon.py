"""``add``, ``disable``, ``enable`` and ``remove`` against a running daemon, which picks them up.

The daemon polls hourly: only the reload that the config watcher starts (and
a source being due at once when it is new or enabled again) can bring the
changes into the published feed within the test's wait.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.cli import main

from .daemonkit import DaemonProcess, FeedServer, wait_for
from .test_daemon_restart import DEADLINE, setup, start_and_publish, titles


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


@pytest.mark.timeout(900)  # six waits of up to DEADLINE each, on a busy machine
def test_the_running_daemon_picks_up_each_command(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(2)]
    config, _seeds, base = setup(tmp_path, first)
    config.write_text(
        "# the daemon's config\n" + config.read_text() + "allow_networks: ['127.0.0.0/8']\n"
    )
    with FeedServer() as feed:
        feed.add("w1", "Karabakh wire one", "The Karabakh wire reports one thing.")
        feed.add("w2", "Karabakh wire two", "The Karabakh wire reports another thing.")
        wire = {"Karabakh wire one", "Karabakh wire two"}
        daemon: DaemonProcess = start_and_publish(config, base, set(first))
        try:
            with daemon.diagnosed():
                added = cli(config, "add", feed.url, "--name", "wire", "--tag", "world")
                assert added.exit_code == 0, added.output
                wait_for(lambda: titles(base) == set(first) | wire, DEADLINE, "the added feed")

                # A rule written by hand: re-applied to the stored entries on reload.
                text = config.read_text()
                config.write_text(
                    text.replace(
                        '    tags: ["world"]\n', '    tags: ["world"]\n    rules: {block: two}\n'
                    )
                )
                wire = {"Karabakh wire one"}
                wait_for(lambda: titles(base) == set(first) | wire, DEADLINE, "the rule applied")

                disabled = cli(config, "disable", "wire")
                assert disabled.exit_code == 0, disabled.output
                # Applied by the daemon, not only written: its store says so.
                wait_for(lambda: _stored_enabled(tmp_path, "wire") is False, DEADLINE, "reload")
                assert _state(config, "wire") == "disabled"
                # Its stories stay while it rests.
                assert titles(base) == set(first) | wire
                reloads = daemon.log().count("reloaded ")

                feed.add("w3", "Karabakh wire three", "The Karabakh wire reports a third thing.")
                feed.add("w4", "Karabakh wire two again", "The Karabakh wire reports a fourth.")
                enabled = cli(config, "enable", "wire")
                assert enabled.exit_code == 0, enabled.output
                wait_for(
                    lambda: titles(base) == set(first) | wire | {"Karabakh wire three"},
                    DEADLINE,
                    "the enabled feed polled at once (its rule still blocking)",
                )
                assert daemon.log().count("reloaded ") > reloads

                removed = cli(config, "remove", "wire")
                assert removed.exit_code == 0, removed.output
                wait_for(lambda: titles(base) == set(first), DEADLINE, "the removed feed's stories")
                assert config.read_text().startswith("# the daemon's config\n")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, daemon.log()[-2000:]
        finally:
            daemon.kill()


def _stored_enabled(folder: Path, name: str) -> bool | None:
    """Whether the daemon's store has the source enabled (None: not readable yet)."""
    url = f"file:{folder / 'var' / 'aggregator.db'}?mode=ro"
    try:
        with closing(sqlite3.connect(url, uri=True)) as db:
            row = db.execute("SELECT enabled FROM sources WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else bool(row[0])


def _state(config: Path, name: str) -> str | None:
    result = cli(config, "status", "--json")
    if result.exit_code != 0:
        return None
    return next(
        (s["state"] for s in json.loads(result.stdout)["sources"] if s["name"] == name), None
    )
