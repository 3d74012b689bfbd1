"""``aggregator publish``, ``run``, ``worker`` and ``serve``: writing and serving the feeds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.cli.app import (
    EXIT_PUBLISH,
    State,
    fail,
    known_errors,
    main,
    out_console,
    pass_state,
)
from aggregator.errors import (
    ConfigError,
    PublishError,
    printable,
)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write to [default: DATA_DIR/public].",
)
@pass_state
def publish(state: State, out: Path | None) -> None:
    """Write every topic's feeds, the index and the OPML as static files."""
    from aggregator.update import publish_export

    with state.context() as ctx:
        target = out or ctx.config.data_dir / "public"
        try:
            export = publish_export(ctx, target)
        except PublishError as exc:
            fail(exc)  # a full disk, a refused folder: one line, exit 4
        except OSError as exc:
            fail(PublishError(f"{target}: cannot write: {exc}"))
    report = export.files
    out_console.print(
        f"published to {target}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
    )
    if export.errors:
        # The other topics are published; these keep their last good files.
        for line in export.errors:
            click.echo(f"aggregator: error: {printable(line)}", err=True)
        sys.exit(EXIT_PUBLISH)


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
@click.option(
    "--catch-up-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=50.0,
    show_default=True,
    help="Remote sources due at start that may begin per second (all within 5 minutes).",
)
@pass_state
def run_cmd(
    state: State,
    data_dir: Path | None,
    shutdown_deadline: float,
    workers: int,
    catch_up_rate: float,
) -> None:
    """Run the daemon: poll sources when due, watch seed folders, publish and serve the feeds.

    SIGTERM/SIGINT shut down cleanly; SIGHUP (or editing the config file) reloads the config.
    One daemon per data folder.
    """
    from aggregator.daemon import DaemonSettings, configure_logging, run_daemon

    configure_logging(state.log_level or "info", state.log_format)
    config = state.config
    # Reloads apply it again: the one given after "run", else the global one.
    data_dir = data_dir or state.data_dir
    settings = DaemonSettings(
        shutdown_deadline=shutdown_deadline, max_workers=workers, catch_up_rate=catch_up_rate
    )
    with known_errors():
        if config.workers.enabled:
            # Workers poll (aggregator worker): this process only serves and publishes.
            from aggregator.workers import run_publisher

            run_publisher(config, data_dir=data_dir, settings=settings)
        else:
            run_daemon(config, data_dir=data_dir, settings=settings)


@main.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=1000),
    default=None,
    help="Source updates this worker runs at once [default: workers.concurrency, 32].",
)
@pass_state
def worker_cmd(state: State, concurrency: int | None) -> None:
    """Take source updates from the job queue in the PostgreSQL store (scale-out).

    Run any number, on any machines sharing the store; ``aggregator run`` then
    only serves and publishes (``workers: {enabled: true}``). SIGTERM finishes
    the updates in flight and exits 0. The queue's tables (procrastinate's own
    schema) are created by the first worker or publisher to start.
    """
    config = state.config
    if config.store_url.startswith("sqlite"):
        fail(
            ConfigError(
                "aggregator worker needs a PostgreSQL store: set store: to a postgresql:// URL "
                "(aggregator migrate --to URL copies this one)",
                file=str(config.path),
                key="store",
            )
        )
    if not config.workers.enabled:
        fail(
            ConfigError(
                "set workers: {enabled: true} so that aggregator run stops polling",
                file=str(config.path),
                key="workers.enabled",
            )
        )
    from aggregator.daemon import configure_logging
    from aggregator.workers import run_worker

    configure_logging(state.log_level or "info", state.log_format)
    with known_errors():
        run_worker(config, concurrency=concurrency)


@main.command("serve")
@_DATA_DIR_OPTION
@pass_state
def serve_cmd(state: State, data_dir: Path | None) -> None:
    """Serve the stored stories' feeds from memory, without polling any source."""
    from aggregator.daemon import configure_logging, serve_documents

    configure_logging(state.log_level or "info", state.log_format)
    with known_errors():
        serve_documents(state.config, data_dir=data_dir)
