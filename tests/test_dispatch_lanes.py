"""The daemon's dispatcher queues updates by host: a slow host's feeds never hold every worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import aggregator.daemon.dispatch as dispatch
from aggregator.config import load_config
from aggregator.model import Outcome, SourceResult, SourceSpec
from aggregator.update import Context, open_context


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    """Yield to the loop until ``condition`` holds; fail after a generous bound."""
    async with asyncio.timeout(120):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def _dispatcher(
    current: Callable[[], Context],
    on_result: Callable[[SourceResult], object],
    *,
    workers: int,
    waiting: int,
) -> dispatch.Dispatcher:
    """A dispatcher of one host's fetch per host (``max_per_host: 1``), as the config says."""
    return dispatch.Dispatcher(
        current,
        on_result,  # type: ignore[arg-type]
        owner="test",
        lease=timedelta(hours=1),
        max_workers=workers,
        catch_up=dispatch.CatchUp(50.0, timedelta(minutes=5)),
        max_per_host=1,
        max_waiting=waiting,
    )


def _config(tmp_path: Path) -> Path:
    # Two hosts: four feeds of a slow one (named first, so claimed first), three of a quick one.
    slow = [f"  - {{name: a-slow{i}, url: 'http://127.0.0.2:9/{i}.xml'}}\n" for i in range(4)]
    quick = [f"  - {{name: b-quick{i}, url: 'http://127.0.0.3:9/{i}.xml'}}\n" for i in range(3)]
    cfg = tmp_path / "aggregator.yaml"
    cfg.write_text(
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\nfetch: {max_per_host: 1}\n"
        f"sources:\n{''.join(slow + quick)}",
        encoding="utf-8",
    )
    return cfg


def test_feeds_of_a_slow_host_wait_in_its_lane_while_other_hosts_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = open_context(load_config(_config(tmp_path)))
    slow_host = asyncio.Event()
    running: dict[str, int] = {"now": 0, "most": 0}
    started: list[str] = []

    async def update(spec: SourceSpec, ctx: Context, **_: object) -> SourceResult:
        # What a fetch that hangs on its host looks like to the dispatcher.
        started.append(spec.name)
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        try:
            if spec.name.startswith("a-slow"):
                await slow_host.wait()
            return SourceResult(source=spec.name, outcome=Outcome.OK)
        finally:
            running["now"] -= 1

    monkeypatch.setattr(dispatch, "update_source", update)
    results: list[str] = []
    dispatcher = _dispatcher(
        lambda: context, lambda r: results.append(r.source), workers=3, waiting=6
    )
    quick = {f"b-quick{i}" for i in range(3)}

    async def main() -> int:
        waiting = await dispatcher.tick()
        # The slow host's lane (2 updates: HOST_LANE x max_per_host) is full and
        # hangs, and its other feeds wait in it; the quick host's feeds go
        # through the third worker.
        await _until(lambda: quick <= set(results), "the quick host's feeds were starved")
        slow_started = sum(1 for name in started if name.startswith("a-slow"))
        assert slow_started == 2
        slow_host.set()
        await _until(lambda: len(results) == 7, "the slow host's feeds never finished")
        await dispatcher.drain(10)
        return waiting

    try:
        waiting = asyncio.run(main())
    finally:
        context.close()
    assert waiting == 0
    # Never more updates at once than workers, lanes or not.
    assert running["most"] <= 3


def test_a_source_whose_write_is_queued_gives_its_hosts_lane_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the writer commits, the host's next feeds fetch: the lane is not held for it."""
    context = open_context(load_config(_config(tmp_path)))
    committed = asyncio.Event()
    started: list[str] = []

    async def update(
        spec: SourceSpec, ctx: Context, *, queued: Callable[[], object] | None = None
    ) -> SourceResult:
        # Fetched and parsed at once; its write waits in the writer's queue.
        started.append(spec.name)
        assert queued is not None
        queued()
        await committed.wait()
        return SourceResult(source=spec.name, outcome=Outcome.OK)

    monkeypatch.setattr(dispatch, "update_source", update)
    results: list[str] = []
    dispatcher = _dispatcher(
        lambda: context, lambda r: results.append(r.source), workers=8, waiting=8
    )

    async def main() -> None:
        await dispatcher.tick()
        # All four of the slow host's feeds start, though its lane holds two
        # (HOST_LANE x max_per_host) and no write has committed yet.
        await _until(
            lambda: sum(1 for n in started if n.startswith("a-slow")) == 4,
            "the host's lane was held until the writes committed",
        )
        assert results == []
        committed.set()
        await _until(lambda: len(results) == 7, "the updates never finished")
        await dispatcher.drain(30)

    try:
        asyncio.run(main())
    finally:
        context.close()


def test_claimed_updates_waiting_for_a_lane_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = open_context(load_config(_config(tmp_path)))
    release = asyncio.Event()

    async def update(spec: SourceSpec, ctx: Context, **_: object) -> SourceResult:
        await release.wait()
        return SourceResult(source=spec.name, outcome=Outcome.OK)

    monkeypatch.setattr(dispatch, "update_source", update)
    dispatcher = _dispatcher(lambda: context, lambda r: None, workers=2, waiting=1)

    async def main() -> tuple[int, int]:
        waiting = await dispatcher.tick()
        in_flight = dispatcher.in_flight
        release.set()
        await dispatcher.drain(30)
        return waiting, in_flight

    try:
        waiting, in_flight = asyncio.run(main())
    finally:
        context.close()
    # Two running and one waiting claimed; the four others stay unclaimed, due.
    assert (in_flight, waiting) == (3, 4)


def test_no_update_starts_while_a_reload_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside ``paused()`` ticks start nothing; after it, updates run on the new config's specs.

    A reload changes the store (a source made due, its entries re-judged by
    new rules) before it swaps the context: an update started in between ran
    the old spec and undid the store's change.
    """
    first = _config(tmp_path)
    contexts = [open_context(load_config(first))]
    changed = tmp_path / "changed.yaml"
    changed.write_text(first.read_text().replace("0.xml'}", "0.xml', tags: [new]}"))
    started: list[SourceSpec] = []

    async def update(spec: SourceSpec, ctx: Context, **_: object) -> SourceResult:
        started.append(spec)
        return SourceResult(source=spec.name, outcome=Outcome.OK)

    monkeypatch.setattr(dispatch, "update_source", update)
    dispatcher = _dispatcher(lambda: contexts[-1], lambda r: None, workers=8, waiting=8)

    async def main() -> None:
        async with dispatcher.paused():
            assert await dispatcher.tick() == 0
            dispatcher.request("a-slow0")
            await asyncio.sleep(0)  # the request's own tick runs, and starts nothing
            assert started == [] and dispatcher.in_flight == 0
            contexts.append(open_context(load_config(changed)))
        await _until(lambda: len(started) >= 2, "nothing started after the pause")
        await dispatcher.drain(30)

    try:
        asyncio.run(main())
    finally:
        for ctx in contexts:
            ctx.close()
    by_name = {spec.name: spec for spec in started}
    assert by_name["a-slow0"].tags == ("new",)
    assert by_name["b-quick0"].tags == ("new",)


def test_a_reload_waits_for_the_updates_of_the_sources_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update of the old spec never ends after the new config applies, nor starts again."""
    context = open_context(load_config(_config(tmp_path)))
    release = asyncio.Event()
    started: list[str] = []

    async def update(spec: SourceSpec, ctx: Context, **_: object) -> SourceResult:
        started.append(spec.name)
        if spec.name == "a-slow0":
            await release.wait()
        return SourceResult(source=spec.name, outcome=Outcome.OK)

    monkeypatch.setattr(dispatch, "update_source", update)
    dispatcher = _dispatcher(lambda: context, lambda r: None, workers=8, waiting=8)
    applied: list[list[str]] = []

    async def reload() -> None:
        async with dispatcher.paused(finishing={"a-slow0"}):
            applied.append(list(started))

    async def main() -> None:
        await dispatcher.tick()
        await _until(lambda: "a-slow0" in started, "the slow source never started")
        reloading = asyncio.create_task(reload())
        dispatcher.request("a-slow0")  # asked for again while the reload waits
        await dispatcher.tick()
        assert applied == [] and not reloading.done()
        release.set()
        await reloading
        await _until(lambda: started.count("a-slow0") == 2, "the held request was lost")
        await dispatcher.drain(30)

    try:
        asyncio.run(main())
    finally:
        context.close()
    # The reload applied after the slow update ended, before its second run began.
    assert applied[0].count("a-slow0") == 1
