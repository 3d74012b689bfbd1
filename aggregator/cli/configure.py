"""``aggregator check``, ``config-schema`` and ``migrate``: the config and the store's home."""

from __future__ import annotations

import json
import sys

import click

from aggregator.cli.app import (
    EXIT_CONFIG,
    State,
    err_console,
    fail,
    known_errors,
    main,
    out_console,
    pass_state,
)
from aggregator.config import config_json_schema
from aggregator.errors import (
    ConfigError,
)


@main.command()
@click.option("--strict", is_flag=True, help="Exit 2 when there are warnings.")
@pass_state
def check(state: State, strict: bool) -> None:
    """Validate the config, summarise it, and warn about what would fail at run time."""
    from aggregator.cli.checks import config_warnings

    config = state.config
    warnings = config_warnings(config)
    for line in warnings:
        click.echo(f"aggregator: warning: {line}", err=True)
    kinds: dict[str, int] = {}
    for s in config.sources:
        kinds[s.kind.value] = kinds.get(s.kind.value, 0) + 1
    verdict = f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "ok"
    out_console.print(f"config:   {config.path}: {verdict}")
    out_console.print(f"data dir: {config.data_dir}")
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    out_console.print(f"sources:  {len(config.sources)} ({by_kind})")
    out_console.print(
        f"topics:   {len(config.topics)} ({', '.join(t.name for t in config.topics) or 'none'})"
    )
    out_console.print(f"serving:  {config.server.base_url}")
    if warnings and strict:
        sys.exit(EXIT_CONFIG)


@main.command("config-schema")
def config_schema() -> None:
    """Print the JSON Schema of the YAML config."""
    click.echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))


@main.command("migrate")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="The empty PostgreSQL database to copy the store into (postgresql://...).",
)
@pass_state
def migrate_cmd(state: State, target: str) -> None:
    """Copy the store into an empty PostgreSQL database, keeping every id.

    Every table is copied: sources' state, entries, stories and their ids,
    topic memberships, tombstones, the dedup index. Stop the daemon first;
    then set ``store:`` to the URL: publishing gives the same bytes.
    """
    from aggregator.daemon import DataDirLock
    from aggregator.store.copy import copy_store
    from aggregator.store.database import Database

    config = state.config
    if not target.startswith(("postgresql://", "postgresql+psycopg://")):
        fail(ConfigError(f"--to: not a postgresql:// URL: {target!r}"))
    url = target.replace("postgresql://", "postgresql+psycopg://", 1)
    if url == config.store_url:
        fail(ConfigError("--to: that is the store itself", file=str(config.path), key="store"))
    with known_errors(), DataDirLock(config.data_dir):
        source = Database.open(config.store_url)
        try:
            dest = Database.open(url)
            try:
                name = dest.engine.url.render_as_string(hide_password=True)
                report = copy_store(
                    source,
                    dest,
                    target_name=name,
                    progress=lambda table, n: err_console.print(f"{table}: {n} rows"),
                )
            finally:
                dest.close()
        finally:
            source.close()
    out_console.print(
        f"copied {report.total} rows in {len(report.rows)} tables to {name}; "
        f"now set store: to that URL in {config.path}",
        markup=False,
    )
