"""While a process ingests, the garbage collector runs less often and skips start-up's heap."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aggregator import update as pipeline
from aggregator.cli import main
from aggregator.engine.collector import (
    INGEST_THRESHOLDS,
    SERVING_THRESHOLDS,
    ingest_gc,
    release_memory,
)


def test_settings_hold_inside_and_are_restored_after() -> None:
    before = gc.get_threshold()
    assert before != INGEST_THRESHOLDS
    made_at_start = [object() for _ in range(10)]
    with ingest_gc():
        assert gc.get_threshold() == INGEST_THRESHOLDS
        # everything alive at the start is out of the generations
        assert gc.get_freeze_count() >= len(made_at_start)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), ingest_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_update_ingests_under_these_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []

    async def update_all(ctx: Any, specs: Any, **_: Any) -> list[Any]:
        seen.append(gc.get_threshold())
        return []

    monkeypatch.setattr(pipeline, "update_all", update_all)
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "update", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [INGEST_THRESHOLDS]
    assert gc.get_threshold() != INGEST_THRESHOLDS


def test_the_daemon_ingests_under_short_young_generations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon serves HTTP while it ingests: a collection holds the GIL, so keep each short."""
    from aggregator.config import load_config
    from aggregator.daemon import entry

    seen: list[tuple[int, ...]] = []

    async def run(self: Any) -> None:
        seen.append(gc.get_threshold())
        seen.append((gc.get_freeze_count() > 0,))

    monkeypatch.setattr(entry.Daemon, "run", run)
    path = tmp_path / "aggregator.yaml"
    path.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    entry.run_daemon(load_config(path))
    young, middle, _ = SERVING_THRESHOLDS
    assert seen == [SERVING_THRESHOLDS, (True,)]
    # A middle-generation collection walks at most young x middle survivors:
    # a tenth of what the one-shot update lets it hold.
    assert young * middle * 10 <= INGEST_THRESHOLDS[0] * INGEST_THRESHOLDS[1]
    assert gc.get_threshold() != SERVING_THRESHOLDS


def test_release_memory_collects_the_cycles_a_burst_left() -> None:
    class Node:
        pass

    was = gc.isenabled()
    gc.disable()  # as the rarely walked old generation would keep them
    try:
        node = Node()
        node.me = node  # type: ignore[attr-defined]
        ref = weakref.ref(node)
        del node
        assert ref() is not None
        release_memory()
        assert ref() is None
    finally:
        if was:
            gc.enable()
