"""In-process pieces of the daemon: the data folder lock, retention, JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.daemon import Daemon, DaemonSettings, DataDirLock, JsonFormatter, with_data_dir
from aggregator.errors import DataDirLockedError
from aggregator.pipeline import open_context

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

    async def run() -> list[str]:
        daemon = Daemon(config, DaemonSettings(watch=False), clock=lambda: now)
        daemon.ctx = open_context(config, clock=lambda: now)
        try:
            await daemon._retention()
            return sorted(i for _s, i, _ in daemon.ctx.store.old_entries(now + timedelta(days=1)))
        finally:
            daemon.ctx.close()

    # The current feed (max_items 2) holds "d" and "a": "a" is old but still
    # published, so it stays; "b" is old and off the feed, "c" in no topic: pruned.
    assert asyncio.run(run()) == ["a", "d"]
