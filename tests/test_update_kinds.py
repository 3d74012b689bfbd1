"""The seam per source kind: a new kind is one ``SourceUpdater`` and one registry line.

A toy kind registered from the test goes through the real update path: the
one writer stores its item with its record, the topic it matches is dirty,
and its state is scheduled and saved like any source's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import load_config
from aggregator.model import Outcome, SourceKind, SourceResult, SourceSpec, SourceState
from aggregator.records import ItemRecord
from aggregator.stories import dedup
from aggregator.update import Context, kinds, open_context, update_all, update_source
from aggregator.update.kinds import Attempt, Hints, any_remote, updater_for, watched_folders
from aggregator.update.write import Write

from .factories import make_item

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class ToyUpdater:
    """A kind whose every update yields one fixed story, found without any I/O."""

    remote = False

    def __init__(self) -> None:
        self.updated: list[str] = []

    def lane(self, spec: SourceSpec) -> str | None:
        return None

    def watched(self, spec: SourceSpec) -> Path | None:
        return None

    async def update(
        self, spec: SourceSpec, ctx: Context, *, now: datetime, state: SourceState, write: Write
    ) -> Attempt:
        self.updated.append(spec.name)
        item = make_item("toy-1", source=spec.name, link="https://toy.example/1")
        record = ItemRecord(item, keys=(dedup.link_key(item), dedup.content_key(item)))
        result = SourceResult(source=spec.name, outcome=Outcome.OK)
        hints = Hints(ttl=timedelta(hours=2))
        return Attempt(result, state, hints, dataclasses.replace(write, records=(record,)))


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    (tmp_path / "toys").mkdir()
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "var"}
sources:
  - {{name: toys, path: toys}}
topics:
  - {{name: karabakh, title: Karabakh, query: Nagorno-Karabakh}}
  - {{name: sport, title: Sport, query: football}}
""",
        encoding="utf-8",
    )
    context = open_context(load_config(config), clock=lambda: NOW)
    yield context
    context.close()


def _toy(ctx: Context) -> SourceSpec:
    # The configured source, of the toy kind (the config knows files and URLs).
    return dataclasses.replace(ctx.config.sources[0], kind="toy")  # type: ignore[arg-type]


def test_a_toy_kind_registered_here_is_updated_through_the_writer(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy = ToyUpdater()
    monkeypatch.setitem(kinds._UPDATERS, "toy", toy)
    spec = _toy(ctx)

    [result] = asyncio.run(update_all(ctx, [spec]))

    assert toy.updated == ["toys"]
    assert (result.outcome, result.new, result.dirty_topics) == (
        Outcome.OK,
        1,
        frozenset({"karabakh"}),
    )
    [story] = ctx.store.topic_stories("karabakh")
    assert (story.item.source, story.item.identity) == ("toys", "toy-1")
    assert ctx.store.topic_stories("sport") == []
    state = ctx.store.get_state("toys")
    assert state is not None and state.last_outcome is Outcome.OK
    # the updater's hint (a two-hour ttl) schedules the next poll
    assert state.next_due_at is not None and state.next_due_at >= NOW + timedelta(hours=2)

    # again: the same item is unchanged, nothing is dirty
    again = asyncio.run(update_source(spec, ctx))
    assert (again.new, again.unchanged, again.dirty_topics) == (0, 1, frozenset())


def test_the_registry_answers_what_kind_tests_used_to(ctx: Context) -> None:
    folder = ctx.config.sources[0]
    url = dataclasses.replace(
        folder, name="wire", kind=SourceKind.URL, location="https://wire.example/"
    )
    assert watched_folders([folder, url]) == {"toys": Path(folder.location)}
    assert any_remote([folder]) is False
    assert any_remote([folder, url]) is True
    assert updater_for(url).lane(url) == "wire.example"


def test_a_kind_without_an_updater_is_a_recorded_error(ctx: Context) -> None:
    result = asyncio.run(update_source(_toy(ctx), ctx))
    assert result.outcome is Outcome.ERROR
    assert "toys: no updater for sources of kind 'toy'" in (result.error or "")
