"""``aggregator update`` and ``discover``: polling sources once from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.app import (
    EXIT_SOURCE_FAILED,
    State,
    err_console,
    fail,
    main,
    out_console,
    pass_state,
)
from aggregator.errors import (
    ConfigError,
    SourceError,
    printable,
)
from aggregator.model import Outcome, SourceResult, SourceSpec

if TYPE_CHECKING:
    from aggregator.store import Store


def _polled(store: Store, specs: list[SourceSpec]) -> list[SourceSpec]:
    """The sources to poll: not disabled in the config, nor put to rest (each skipped one said)."""
    resting = {st.name: st.disabled_reason for st in store.states() if st.disabled_at is not None}
    polled = []
    for spec in specs:
        if not spec.enabled:
            why = "disabled in the config (aggregator enable brings it back)"
        elif spec.name in resting:
            why = f"put to rest: {resting[spec.name]} (aggregator enable brings it back)"
        else:
            polled.append(spec)
            continue
        err_console.print(f"skipped: {spec.name}: {printable(why)}", markup=False)
    return polled


def _result_json(r: SourceResult) -> dict[str, Any]:
    return {
        "source": r.source,
        "outcome": r.outcome.value,
        "new": r.new,
        "merged": r.merged,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "removed": r.removed,
        "problems": list(r.problems),
        "error_class": r.error_class,
        "error": r.error,
        "http_status": r.http_status,
        "duration": round(r.duration, 3),
        "dirty_topics": sorted(r.dirty_topics),
    }


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--source", "only", multiple=True, help="Update only this source (repeatable).")
@pass_state
def update(state: State, as_json: bool, only: tuple[str, ...]) -> None:
    """Poll every source once and store what is new."""
    from aggregator.engine.collector import ingest_gc
    from aggregator.update import update_all

    config = state.config
    specs = list(config.sources)
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            fail(
                ConfigError(f"unknown source {unknown[0]!r}", file=str(config.path), key="sources")
            )
        specs = [s for s in specs if s.name in only]
    # A new store is migrated in a child: alembic and what it imports would
    # stay in this process for the whole update (~11 MiB of its peak).
    with state.context(migrate_apart=True) as ctx:
        specs = _polled(ctx.store, specs)
        with _reporting(len(specs), rich=not as_json) as advance, ingest_gc():
            results = asyncio.run(update_all(ctx, specs, on_result=advance))
    if as_json:
        click.echo(json.dumps([_result_json(r) for r in results], indent=2))
    else:
        _print_table(results)
    if any(r.outcome in (Outcome.ERROR, Outcome.GONE) for r in results):
        sys.exit(EXIT_SOURCE_FAILED)


@contextmanager
def _reporting(total: int, *, rich: bool) -> Iterator[Callable[[SourceResult], None]]:
    """What reports each source as it ends: its problems on stderr, one line each, no terminal
    escapes; with ``rich``, a progress bar too while stderr is a terminal.

    ``update --json`` (scripts, cron, the benchmarks) never imports rich: ~35 ms of a start.
    """
    if not rich or not err_console.is_terminal:

        def plain(result: SourceResult) -> None:
            for problem in result.problems:
                click.echo(f"warning: {printable(problem)}", err=True)
            if result.error:
                click.echo(f"error: {printable(result.error)}", err=True)

        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]updating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console.console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total)

        def advance(result: SourceResult) -> None:
            progress.update(task, advance=1, description=result.source)
            for problem in result.problems:
                progress.console.print(f"warning: {printable(problem)}", markup=False)
            if result.error:
                progress.console.print(f"error: {printable(result.error)}", markup=False)

        yield advance


def _print_table(results: list[SourceResult]) -> None:
    from rich.table import Table

    table = Table(title="update")
    for col in (
        "source",
        "outcome",
        "new",
        "updated",
        "unchanged",
        "removed",
        "problems",
        "seconds",
    ):
        table.add_column(col, justify="right" if col not in ("source", "outcome") else "left")
    for r in results:
        table.add_row(
            r.source,
            r.outcome.value,
            str(r.new),
            str(r.updated),
            str(r.unchanged),
            str(r.removed),
            str(len(r.problems)),
            f"{r.duration:.2f}",
        )
    out_console.print(table)


@main.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option(
    "--timeout", type=float, default=20.0, show_default=True, help="Seconds allowed per fetch."
)
@pass_state
def discover(state: State, url: str, as_json: bool, timeout: float) -> None:
    """Print the feeds a page offers (or the URL itself, when it is a feed).

    Exits 1 when the URL cannot be fetched or offers no feed.
    """
    from rich.table import Table

    from aggregator.update import discover_url

    config = state.config
    try:
        feeds = asyncio.run(discover_url(config, url, timeout=timeout))
    except SourceError as exc:
        click.echo(f"aggregator: error: {exc}", err=True)
        sys.exit(EXIT_SOURCE_FAILED)
    if as_json:
        click.echo(
            json.dumps(
                [{"url": f.url, "title": f.title, "type": f.type, "via": f.via} for f in feeds],
                indent=2,
            )
        )
    elif feeds:
        table = Table(title=f"feeds at {url}")
        for col in ("title", "type", "url", "found by"):
            table.add_column(col, overflow="fold")
        for f in feeds:
            table.add_row(f.title or "", f.type or "", f.url, f.via)
        out_console.print(table)
    else:
        click.echo(f"{url}: no feeds found", err=True)
    if not feeds:
        sys.exit(EXIT_SOURCE_FAILED)
