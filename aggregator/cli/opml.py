"""``aggregator export-opml`` and ``import-opml``: subscription lists in and out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.cli import subscriptions
from aggregator.cli.app import EXIT_CONFIG, State, fail, known_errors, main, pass_state
from aggregator.errors import AggregatorError, PublishError
from aggregator.sources.opml import parse_opml

__all__ = ["export_opml", "import_opml"]


@main.command("export-opml")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write [default: standard output].",
)
@pass_state
def export_opml(state: State, out: Path | None) -> None:
    """Write the configured URL sources as an OPML subscription list."""
    data, count = subscriptions.export_opml(state.config)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(PublishError(f"{out}: cannot write: {exc}"))
    click.echo(f"wrote {count} sources to {out}", err=True)


@main.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Sources file to write [default: {subscriptions.IMPORTED_SOURCES} beside the config].",
)
@pass_state
def import_opml(state: State, file: Path, into: Path | None) -> None:
    """Add an OPML file's feeds as sources, in a YAML file the config includes.

    Feeds already configured (same URL) are skipped. The config file gains an
    ``include:`` line if it needs one; its comments are kept. The result is
    validated, and both files are restored if it does not load.
    """
    config = state.config
    with known_errors():
        outlines = parse_opml(file.read_bytes(), name=str(file))
    plan = subscriptions.plan_import(config, outlines, into)
    if not plan.added:
        click.echo(f"added 0 sources, skipped {plan.skipped} already configured")
        return
    try:
        subscriptions.write_import(config, plan, opml_name=file.name)
    except (AggregatorError, OSError, ValueError) as exc:
        click.echo(f"aggregator: error: import-opml: {exc}; files restored", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(
        f"added {len(plan.added)} sources to {plan.target}, "
        f"skipped {plan.skipped} already configured"
    )
