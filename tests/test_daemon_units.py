"""In-process pieces of the daemon: the data folder lock, retention, JSON logs, reload plans."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.daemon import DataDirLock, JsonFormatter, plan_reload, with_data_dir
from aggregator.errors import DataDirLockedError
from aggregator.update import open_context
from aggregator.update.retention import prune

from .factories import T0, make_item


def test_lock_refuses_a_second_holder_and_names_the_pid(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        with pytest.raises(DataDirLockedError) as err:
            DataDirLock(tmp_path).acquire()
        assert (
            str(err.value)
            == f"{tmp_path}: data folder is locked by a running daemon (pid {os.getpid()})"
        )
    # Released: a new holder gets it.
    with DataDirLock(tmp_path):
        pass


def test_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "aggregator.lock").write_text("999999\n")
    lock = DataDirLock(tmp_path)
    lock.acquire()
    assert (tmp_path / "aggregator.lock").read_text().strip() == str(os.getpid())
    lock.release()


def test_json_log_line_has_source_and_duration() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.daemon.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("wire: ok", extra={"source": "wire", "duration": 0.25, "outcome": "ok"})
    line = json.loads(stream.getvalue())
    assert line["level"] == "warning"
    assert line["logger"] == "test.daemon.json"
    assert line["message"] == "wire: ok"
    assert (line["source"], line["duration"], line["outcome"]) == ("wire", 0.25, "ok")
    assert line["time"].endswith("+00:00")


def test_retention_keeps_published_stories(tmp_path: Path) -> None:
    cfg = tmp_path / "aggregator.yaml"
    cfg.write_text(
        "data_dir: var\n"
        "retention: {max_age: 30d}\n"
        "topics:\n  - {name: talks, query: talks, max_items: 2}\n",
        encoding="utf-8",
    )
    config = with_data_dir(load_config(cfg), tmp_path / "elsewhere")
    assert config.retention_max_age == timedelta(days=30)
    assert config.data_dir == (tmp_path / "elsewhere").resolve()
    now = T0 + timedelta(days=100)
    ctx = open_context(config, clock=lambda: now)
    old_published = make_item(
        "a", title="Old talks one", body="First old body about the talks in the city hall."
    )
    old_pruned = make_item(
        "b",
        title="Old talks two",
        body="Second old body about other talks far away from here.",
        published=T0 - timedelta(days=1),
    )
    old_untopical = make_item(
        "c", title="Weather", body="Rain is expected over the weekend in most regions here."
    )
    fresh = make_item(
        "d",
        title="Fresh talks",
        body="New talks began this week in yet another city.",
        published=now,
    )
    ctx.store.ingest([old_published, old_pruned, old_untopical], now=T0, matchers=ctx.matchers)
    ctx.store.ingest([fresh], now=now, matchers=ctx.matchers)
    ctx.close()

    ctx = open_context(config, clock=lambda: now)
    try:
        report = prune(
            ctx.store, config.topics, ctx.matchers, now=now, max_age=config.retention_max_age
        )
        left = sorted(i for _s, i, _ in ctx.store.old_entries(now + timedelta(days=1)))
    finally:
        ctx.close()
    # The current feed (max_items 2) holds "d" and "a": "a" is old but still
    # published, so it stays; "b" is old and off the feed, "c" in no topic: pruned.
    assert left == ["a", "d"]
    assert report.pruned == 2
    assert report.before == now - timedelta(days=30)
    assert report.dirty_topics == {"talks"}


# -- reload planning (pure) ------------------------------------------------------


def _config(tmp_path: Path, body: str, name: str = "a.yaml") -> Config:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    (tmp_path / "other").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return load_config(path)


BASE = """
data_dir: var
server: {host: 127.0.0.1, port: 8080}
allow_networks: ['127.0.0.0/8']
sources:
  - {name: wire, url: 'http://127.0.0.1:9/feed.xml'}
  - {name: seeds, path: seeds}
  - {name: gone, url: 'http://127.0.0.1:9/gone.xml'}
topics:
  - {name: talks, query: talks}
  - {name: war, query: war}
"""


def test_plan_reload_of_the_same_config_changes_nothing(tmp_path: Path) -> None:
    old = _config(tmp_path, BASE)
    new = _config(tmp_path, BASE, "b.yaml")
    plan = plan_reload(old, new)
    assert plan.config == new
    assert (plan.added, plan.removed, plan.changed, plan.topics, plan.reconcile) == (
        frozenset(),
        frozenset(),
        frozenset(),
        frozenset(),
        frozenset(),
    )
    assert not plan.new_fetcher
    assert not plan.rewatch
    assert plan.warnings == ()


def test_plan_reload_names_each_change(tmp_path: Path) -> None:
    old = _config(tmp_path, BASE)
    changed = (
        BASE.replace(
            "- {name: gone, url: 'http://127.0.0.1:9/gone.xml'}", "- {name: more, path: other}"
        )
        .replace(
            "{name: wire, url: 'http://127.0.0.1:9/feed.xml'}",
            "{name: wire, url: 'http://127.0.0.1:9/feed.xml', interval: 2h}",
        )
        .replace("{name: war, query: war}", "{name: war, query: 'war OR peace'}")
        .replace("allow_networks: ['127.0.0.0/8']", "allow_networks: ['10.0.0.0/8']")
        + "  - {name: new, query: new}\n"
    )
    plan = plan_reload(old, _config(tmp_path, changed, "b.yaml"))
    assert plan.added == {"more"}
    assert plan.removed == {"gone"}
    assert plan.changed == {"wire"}
    assert plan.topics == {"war", "new"}
    assert plan.new_fetcher
    # A seed folder added: watched, and reconciled at once; "seeds" is untouched.
    assert plan.rewatch
    assert plan.reconcile == {"more"}


def test_plan_reload_reconciles_a_moved_seed_folder(tmp_path: Path) -> None:
    old = _config(tmp_path, BASE)
    plan = plan_reload(old, _config(tmp_path, BASE.replace("path: seeds", "path: other"), "b.yaml"))
    assert plan.changed == {"seeds"}
    assert plan.rewatch
    assert plan.reconcile == {"seeds"}


def test_plan_reload_stops_watching_a_disabled_seed_folder_and_reconciles_it_enabled(
    tmp_path: Path,
) -> None:
    old = _config(tmp_path, BASE)
    off = BASE.replace("{name: seeds, path: seeds}", "{name: seeds, path: seeds, enabled: false}")
    disabled = _config(tmp_path, off, "b.yaml")
    plan = plan_reload(old, disabled)
    assert plan.changed == {"seeds"}
    assert plan.rewatch
    assert plan.reconcile == frozenset()
    back = plan_reload(disabled, _config(tmp_path, BASE, "c.yaml"))
    assert back.rewatch
    assert back.reconcile == {"seeds"}


def test_plan_reload_keeps_what_needs_a_restart(tmp_path: Path) -> None:
    old = _config(tmp_path, BASE)
    new = _config(
        tmp_path,
        BASE.replace("data_dir: var", "data_dir: elsewhere").replace("8080", "8081"),
        "b.yaml",
    )
    plan = plan_reload(old, new)
    assert plan.config.data_dir == old.data_dir
    assert plan.config.store_url == old.store_url
    assert plan.config == dataclasses.replace(new, data_dir=old.data_dir, store_url=old.store_url)
    assert plan.warnings == (
        f"data_dir and store changes need a restart; keeping {old.data_dir}",
        "server address changes need a restart; serving http://127.0.0.1:8080/",
    )


def test_plan_reload_says_a_new_admin_token_needs_a_restart(tmp_path: Path) -> None:
    old = _config(tmp_path, BASE)
    token = "port: 8080, admin_token: reloaded-token-0123456789"
    new = _config(tmp_path, BASE.replace("port: 8080", token), "b.yaml")
    assert plan_reload(old, new).warnings == (
        "server.admin_token changes need a restart; /status keeps the old one",
    )
