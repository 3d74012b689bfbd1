"""The ``aggregator`` command group: its options, state, consoles and exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from aggregator import __version__
from aggregator.config import DEFAULT_CONFIG_PATH, Config, load_config
from aggregator.config.units import short_duration
from aggregator.errors import (
    AggregatorError,
    ListenError,
    PublishError,
    StoreError,
    printable,
)

if TYPE_CHECKING:
    from rich.console import Console

    from aggregator.store import Store
    from aggregator.update import Context

# The engine (``aggregator.update``: parsers, publishers, store) is imported by
# the commands that use it, so ``--help``, ``check`` and the like start fast.

EXIT_SOURCE_FAILED = 1
EXIT_CONFIG = 2
EXIT_STORE = 3
EXIT_PUBLISH = 4
EXIT_LISTEN = 5
#: recent entries of a source that ``aggregator sources`` looks at for its teaser hint
HINT_SAMPLE = 20

F = TypeVar("F", bound=Callable[..., Any])


class _Console:
    """A rich console made on first use.

    ``aggregator run`` prints nothing through rich: it never pays for
    importing it (rich and pygments are about 5 MiB of a daemon at rest).
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The rich console itself."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


err_console = _Console(stderr=True, highlight=False, soft_wrap=True)
out_console = _Console(highlight=False, soft_wrap=True)


def fail(error: AggregatorError) -> NoReturn:
    """Print one line for a known error and exit with its documented code."""
    code = EXIT_CONFIG
    if isinstance(error, StoreError):
        code = EXIT_STORE
    elif isinstance(error, PublishError):
        code = EXIT_PUBLISH
    elif isinstance(error, ListenError):
        code = EXIT_LISTEN
    click.echo(f"aggregator: error: {printable(str(error))}", err=True)
    sys.exit(code)


@contextmanager
def known_errors() -> Iterator[None]:
    try:
        yield
    except AggregatorError as exc:
        fail(exc)


class State:
    def __init__(
        self,
        config_path: str | None,
        log_level: str | None = None,
        log_format: str = "text",
        data_dir: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        #: ``--data-dir`` (or ``AGGREGATOR_DATA_DIR``): every command's data folder
        self.data_dir = data_dir
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The loaded config, with the data folder every command resolves the same way."""
        if self._config is None:
            from aggregator.runtime.settings import with_data_dir

            with known_errors():
                self._config = with_data_dir(load_config(self.config_path), self.data_dir)
        return self._config

    @contextmanager
    def context(self, *, migrate_apart: bool = False) -> Iterator[Context]:
        """The update context over the configured store; ``migrate_apart`` as in
        :func:`aggregator.update.open_context`."""
        from aggregator.update import open_context

        with known_errors():
            ctx = open_context(self.config, migrate_apart=migrate_apart)
        try:
            yield ctx
        finally:
            ctx.close()


pass_state = click.make_pass_decorator(State)


#: options of the ``aggregator`` group a user may also give after the command
_GLOBAL_OPTIONS = ("--config", "--log-level", "--log-format", "--data-dir")


#: the module (in :mod:`aggregator.cli`) that defines each command; it is
#: imported when its command is asked for, so a process holds the code of its
#: own command only (the daemon's ``run`` none of ``stories`` or ``import-opml``)
COMMAND_MODULES = {
    "check": "configure",
    "config-schema": "configure",
    "migrate": "configure",
    "update": "ingest",
    "discover": "ingest",
    "add": "manage",
    "remove": "manage",
    "disable": "manage",
    "enable": "manage",
    "export-opml": "opml",
    "import-opml": "opml",
    "publish": "serving",
    "run": "serving",
    "worker": "serving",
    "serve": "serving",
    "sources": "sources",
    "status": "sources",
    "stories": "stories",
    "topics": "topics",
    "preview": "topics",
    "explain": "topics",
}


class _Aggregator(click.Group):
    """The command group: commands loaded on demand, options accepted after the command too.

    ``aggregator check --config x.yaml`` and ``aggregator run --log-format
    json`` read as ``aggregator --config x.yaml check``: the global options
    found after the command (and before a ``--``) move in front of it, unless
    the command has an option of the same name.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"aggregator.cli.{module}")  # registers its commands
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMAND_MODULES.values())):
            importlib.import_module(f"aggregator.cli.{module}")
        return super().list_commands(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._hoist(ctx, args))

    def _hoist(self, ctx: click.Context, args: list[str]) -> list[str]:
        front: list[str] = []
        i = 0
        while i < len(args) and args[i].startswith("-"):
            # The group's own options before the command, with their values.
            takes_value = args[i] in _GLOBAL_OPTIONS
            i += 2 if takes_value else 1
        if i >= len(args):
            return args
        command = self.get_command(ctx, args[i])
        if command is None:
            return args
        own = {name for param in command.params for name in getattr(param, "opts", ())}
        hoisted = [name for name in _GLOBAL_OPTIONS if name not in own]
        rest: list[str] = []
        j = i + 1
        while j < len(args):
            arg = args[j]
            if arg == "--":
                rest.extend(args[j:])
                break
            name = arg.split("=", 1)[0]
            if name in hoisted:
                if "=" in arg:
                    front.append(arg)
                    j += 1
                    continue
                front.extend(args[j : j + 2])
                j += 2
                continue
            rest.append(arg)
            j += 1
        return [*args[:i], *front, args[i], *rest]


@click.group(cls=_Aggregator, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AGGREGATOR_DATA_DIR",
    default=None,
    help="Data folder (database, published files, lock) instead of the config's data_dir, "
    "for every command [env AGGREGATOR_DATA_DIR].",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    log_level: str | None,
    log_format: str,
    data_dir: Path | None,
) -> None:
    """Aggregate feeds and local seed articles into topic feeds."""
    logging.basicConfig(
        level=(log_level or "warning").upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = State(config_path, log_level, log_format, data_dir)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def age(delta: timedelta) -> str:
    """``42s``, ``29m``, ``3d4h``: a length of time in a table (seconds dropped past a minute)."""
    size = abs(delta)
    if size >= timedelta(minutes=1):
        size = timedelta(minutes=size // timedelta(minutes=1))
    return short_duration(size)


def relative(value: datetime | None, now: datetime | None = None) -> str | None:
    """A table's time of a poll: ``5m ago``, ``in 29m``, ``3d4h ago`` (``--json`` keeps ISO)."""
    if value is None:
        return None
    delta = value - (now or datetime.now(UTC))
    if abs(delta) < timedelta(seconds=1):
        return "now"
    return f"in {age(delta)}" if delta > timedelta(0) else f"{age(delta)} ago"


def minute(value: datetime | None) -> str | None:
    """A table's date of a story: ``2026-12-07 08:46`` (UTC, to the minute)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else None


def story_id_of(store: Store, text: str) -> str:
    """The story a user named: its whole id, without ``urn:uuid:``, or a unique start of it.

    Exits 2 (a bad argument) when no story, or more than one, fits.
    """
    found = store.find_story_ids(text)
    if len(found) == 1:
        return found[0]
    if not found:
        click.echo(f"aggregator: error: no story {text!r} (see aggregator stories)", err=True)
    else:
        shown = ", ".join(f.removeprefix("urn:uuid:") for f in found[:5])
        click.echo(
            f"aggregator: error: {text!r} names several stories ({shown}"
            f"{', ...' if len(found) > 5 else ''}): give more of the id",
            err=True,
        )
    sys.exit(EXIT_CONFIG)
