"""The ``aggregator`` command.

Exit codes (also in the README):

====  =========================================================
0     success
1     the command ran, but at least one source failed
2     bad configuration or usage
3     the store or data folder cannot be used (locked, broken)
4     publishing failed (cannot write the output)
====  =========================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aggregator import __version__
from aggregator.config import DEFAULT_CONFIG_PATH, Config, config_json_schema, load_config
from aggregator.errors import AggregatorError, ConfigError, PublishError, StoreError
from aggregator.model import Outcome, SourceResult
from aggregator.pipeline import Context, open_context, publish_static, update_all

EXIT_OK = 0
EXIT_SOURCE_FAILED = 1
EXIT_CONFIG = 2
EXIT_STORE = 3
EXIT_PUBLISH = 4

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def fail(error: AggregatorError) -> NoReturn:
    """Print one line for a known error and exit with its documented code."""
    code = EXIT_CONFIG
    if isinstance(error, StoreError):
        code = EXIT_STORE
    elif isinstance(error, PublishError):
        code = EXIT_PUBLISH
    click.echo(f"aggregator: error: {error}", err=True)
    sys.exit(code)


@contextmanager
def known_errors() -> Iterator[None]:
    try:
        yield
    except AggregatorError as exc:
        fail(exc)


class _State:
    def __init__(
        self, config_path: str | None, log_level: str | None = None, log_format: str = "text"
    ) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            with known_errors():
                self._config = load_config(self.config_path)
        return self._config

    @contextmanager
    def context(self) -> Iterator[Context]:
        with known_errors():
            ctx = open_context(self.config)
        try:
            yield ctx
        finally:
            ctx.close()


pass_state = click.make_pass_decorator(_State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="AGGREGATOR_CONFIG",
    type=click.Path(dir_okay=False),
    help=f"YAML config file [env AGGREGATOR_CONFIG; default {DEFAULT_CONFIG_PATH}]",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    envvar="AGGREGATOR_LOG_LEVEL",
    default=None,
    help="[env AGGREGATOR_LOG_LEVEL; default: info for run/serve, warning otherwise]",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="AGGREGATOR_LOG_FORMAT",
    default="text",
    show_default=True,
    help="Log lines as text or JSON objects [env AGGREGATOR_LOG_FORMAT].",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str
) -> None:
    """Aggregate feeds and local seed articles into topic feeds."""
    logging.basicConfig(
        level=(log_level or "warning").upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = _State(config_path, log_level, log_format)


@main.command()
@pass_state
def check(state: _State) -> None:
    """Validate the config and summarise it."""
    config = state.config
    kinds: dict[str, int] = {}
    for s in config.sources:
        kinds[s.kind.value] = kinds.get(s.kind.value, 0) + 1
    out_console.print(f"config:   {config.path}: ok")
    out_console.print(f"data dir: {config.data_dir}")
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    out_console.print(f"sources:  {len(config.sources)} ({by_kind})")
    out_console.print(
        f"topics:   {len(config.topics)} ({', '.join(t.name for t in config.topics) or 'none'})"
    )
    out_console.print(f"serving:  {config.server.base_url}")


@main.command("config-schema")
def config_schema() -> None:
    """Print the JSON Schema of the YAML config."""
    click.echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))


def _result_json(r: SourceResult) -> dict[str, Any]:
    return {
        "source": r.source,
        "outcome": r.outcome.value,
        "new": r.new,
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
def update(state: _State, as_json: bool, only: tuple[str, ...]) -> None:
    """Poll every source once and store what is new."""
    config = state.config
    specs = list(config.sources)
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            fail(
                ConfigError(f"unknown source {unknown[0]!r}", file=str(config.path), key="sources")
            )
        specs = [s for s in specs if s.name in only]
    with state.context() as ctx:
        show_progress = not as_json and err_console.is_terminal
        with Progress(
            TextColumn("[bold]updating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            disable=not show_progress,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=len(specs))

            def advance(result: SourceResult) -> None:
                progress.update(task, advance=1, description=result.source)
                for problem in result.problems:
                    progress.console.print(f"warning: {problem}", markup=False)
                if result.error:
                    progress.console.print(f"error: {result.error}", markup=False)

            results = asyncio.run(update_all(ctx, specs, on_result=advance))
    if as_json:
        click.echo(json.dumps([_result_json(r) for r in results], indent=2))
    else:
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
    if any(r.outcome in (Outcome.ERROR, Outcome.GONE) for r in results):
        sys.exit(EXIT_SOURCE_FAILED)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write to [default: DATA_DIR/public].",
)
@pass_state
def publish(state: _State, out: Path | None) -> None:
    """Write every topic's feeds, the index and the OPML as static files."""
    with state.context() as ctx:
        target = out or ctx.config.data_dir / "public"
        try:
            report = publish_static(ctx, target)
        except OSError as exc:
            fail(PublishError(f"{target}: cannot write: {exc}"))
    out_console.print(
        f"published to {target}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@main.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def sources_cmd(state: _State, as_json: bool) -> None:
    """List sources with their state: items, last result, last error."""
    with state.context() as ctx:
        states = {s.name: s for s in ctx.store.states()}
        counts = ctx.store.entry_counts()
    rows: list[dict[str, Any]] = []
    for spec in state.config.sources:
        st = states.get(spec.name)
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind.value,
                "location": st.location if st else spec.location,
                "configured": spec.location,
                "items": counts.get(spec.name, 0),
                "last_outcome": st.last_outcome.value if st and st.last_outcome else None,
                "last_status": st.last_status if st else None,
                "last_attempt_at": _iso(st.last_attempt_at) if st else None,
                "last_success_at": _iso(st.last_success_at) if st else None,
                "next_due_at": _iso(st.next_due_at) if st else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "last_error_class": st.last_error_class if st else None,
                "last_error": st.last_error if st else None,
                "discovered_feed": st.discovered_feed if st else None,
                "gone": st.gone if st else False,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="sources")
    for col in (
        "name",
        "kind",
        "location",
        "items",
        "last result",
        "failures",
        "next due",
        "last error",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["location"],
            str(r["items"]),
            r["last_outcome"] or "never",
            str(r["consecutive_failures"]),
            r["next_due_at"] or "now",
            r["last_error"] or "",
        )
    out_console.print(table)


@main.command("topics")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def topics_cmd(state: _State, as_json: bool) -> None:
    """List topics: query, story count, feed URL."""
    config = state.config
    with state.context() as ctx:
        counts = ctx.store.topic_counts()
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "title": t.title,
            "query": t.query,
            "stories": counts.get(t.name, 0),
            "private": t.private,
            "feed": f"{config.server.base_url}topics/{t.name}.atom",
            "file": str(config.data_dir / "public" / "topics" / f"{t.name}.atom"),
        }
        for t in config.topics
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="topics")
    for col in ("name", "query", "stories", "feed"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["query"],
            str(r["stories"]),
            r["feed"] + (" (private)" if r["private"] else ""),
        )
    out_console.print(table)


_DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AGGREGATOR_DATA_DIR",
    default=None,
    help="Data folder (database, published files, lock) instead of the config's data_dir "
    "[env AGGREGATOR_DATA_DIR].",
)


@main.command("run")
@_DATA_DIR_OPTION
@click.option(
    "--shutdown-deadline",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds SIGTERM waits for updates in flight.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Source updates running at once.",
)
@pass_state
def run_cmd(state: _State, data_dir: Path | None, shutdown_deadline: float, workers: int) -> None:
    """Run the daemon: poll sources when due, watch seed folders, publish and serve the feeds.

    SIGTERM/SIGINT shut down cleanly; SIGHUP (or editing the config file) reloads the config.
    One daemon per data folder.
    """
    from aggregator.daemon import DaemonSettings, configure_logging, run_daemon

    configure_logging(state.log_level or "info", state.log_format)
    config = state.config
    settings = DaemonSettings(shutdown_deadline=shutdown_deadline, max_workers=workers)
    with known_errors():
        run_daemon(config, data_dir=data_dir, settings=settings)


@main.command("serve")
@_DATA_DIR_OPTION
@pass_state
def serve_cmd(state: _State, data_dir: Path | None) -> None:
    """Serve the stored stories' feeds from memory, without polling any source."""
    from aggregator.daemon import configure_logging, serve_documents

    configure_logging(state.log_level or "info", state.log_format)
    with known_errors():
        serve_documents(state.config, data_dir=data_dir)
