"""The ``aggregator`` command.

Exit codes (also in the README):

====  ==================================================

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from aggregator import __version__, subscriptions
from aggregator.config import DEFAULT_CONFIG_PATH, Config, config_json_schema, load_config
from aggregator.errors import (
    AggregatorError,
    ConfigError,
    ListenError,
    PublishError,
    SourceError,
    StoreError,
    printable,
    redact_urls,
)
from aggregator.model import Outcome, SourceKind, SourceResult
from aggregator.sources.opml import parse_opml
from aggregator.teasers import teaser_hint
from aggregator.topics import Hit, TopicMatcher

if TYPE_CHECKING:
    from rich.console import Console

    from aggregator.preview import Verdict
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


class _State:
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
    def context(self) -> Iterator[Context]:
        from aggregator.update import open_context

        with known_errors():
            ctx = open_context(self.config)
        try:
            yield ctx
        finally:
            ctx.close()


pass_state = click.make_pass_decorator(_State)


#: options of the ``aggregator`` group a user may also give after the command
_GLOBAL_OPTIONS = ("--config", "--log-level", "--log-format", "--data-dir")


class _Aggregator(click.Group):
    """The command group: its options are accepted after the command's name too.

    ``aggregator check --config x.yaml`` and ``aggregator run --log-format
    json`` read as ``aggregator --config x.yaml check``: the global options
    found after the command (and before a ``--``) move in front of it, unless
    the command has an option of the same name.
    """

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
    ctx.obj = _State(config_path, log_level, log_format, data_dir)


@main.command()
@click.option("--strict", is_flag=True, help="Exit 2 when there are warnings.")
@pass_state
def check(state: _State, strict: bool) -> None:
    """Validate the config, summarise it, and warn about what would fail at run time."""
    from aggregator.checks import config_warnings

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
def update(state: _State, as_json: bool, only: tuple[str, ...]) -> None:
    """Poll every source once and store what is new."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

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
    with state.context() as ctx:
        show_progress = not as_json and err_console.is_terminal
        with Progress(
            TextColumn("[bold]updating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console.console,
            disable=not show_progress,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=len(specs))

            def advance(result: SourceResult) -> None:
                progress.update(task, advance=1, description=result.source)
                # A problem names a guid or a file: one line each, no terminal escapes.
                for problem in result.problems:
                    progress.console.print(f"warning: {printable(problem)}", markup=False)
                if result.error:
                    progress.console.print(f"error: {printable(result.error)}", markup=False)

            with ingest_gc():
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@main.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def sources_cmd(state: _State, as_json: bool) -> None:
    """List sources with their state: items, last result, last error."""
    from rich.table import Table

    with state.context() as ctx:
        states = {s.name: s for s in ctx.store.states()}
        counts = ctx.store.entry_counts()
        # Summary-only feeds: suggest full_content where it is not set.
        hints = {
            spec.name: teaser_hint(ctx.store.recent_contents(spec.name, HINT_SAMPLE))
            for spec in state.config.sources
            if spec.kind is SourceKind.URL and spec.full_content is None and counts.get(spec.name)
        }
    rows: list[dict[str, Any]] = []
    for spec in state.config.sources:
        st = states.get(spec.name)
        hint = hints.get(spec.name)
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
                # Gone: never polled again (no date rather than the end of time).
                "next_due_at": _iso(st.next_due_at) if st and not st.gone else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "last_error_class": st.last_error_class if st else None,
                "last_error": st.last_error if st else None,
                "discovered_feed": st.discovered_feed if st else None,
                "url_history": list(st.url_history) if st else [],
                "gone": st.gone if st else False,
                "full_content": spec.full_content is not None,
                "hint": str(hint) if hint else None,
                "problems": list(st.problems) if st else [],
                # A permanent redirect seen, not yet confirmed (the location is the confirmed one).
                "moved_to": st.moved_to if st else None,
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
            "never (gone)" if r["gone"] else r["next_due_at"] or "now",
            r["last_error"] or "",
        )
    out_console.print(table)
    _print_problems((r["name"], r["problems"]) for r in rows)
    _print_moves(
        (r["name"], redact_urls(r["moved_to"] or r["location"]))
        for r in rows
        if r["moved_to"] or r["location"] != r["configured"]
    )
    for r in rows:
        if r["hint"]:
            out_console.print(f"hint: {r['name']}: {r['hint']}", markup=False, highlight=False)


def _print_moves(moves: Iterable[tuple[str, str]]) -> None:
    """Where moved sources' permanent redirects lead: what to write in the config."""
    for name, url in moves:
        out_console.print(
            f"moved: {name}: permanently redirected to {url} (update its url: in the config)",
            markup=False,
            highlight=False,
        )


def _print_problems(sources: Iterable[tuple[str, Sequence[str]]]) -> None:
    """The problems each source's last read found, one line each, below its table."""
    for name, problems in sources:
        for line in problems:
            shown = line if line.startswith(f"{name}: ") else f"{name}: {line}"
            out_console.print(f"problem: {shown}", markup=False, highlight=False)


_SPARK_STYLE = {"ok": "green", "nm": "dim green", "fail": "bold red"}
_HEALTH_STYLE = {
    "ok": "green",
    "failing": "bold red",
    "gone": "red",
    "backing off": "yellow",
    "silent": "yellow",
    "moved": "cyan",
}


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help='Print {"sources": [...], "topics": [...]}.')
@pass_state
def status_cmd(state: _State, as_json: bool) -> None:
    """Each source's health, last success, next poll and recent polls; topics' stories.

    It only reads the store, so it runs beside the daemon.
    """
    from rich.table import Table
    from rich.text import Text

    from aggregator.status import sparkline, to_json
    from aggregator.store import open_store
    from aggregator.update import read_status

    config = state.config
    with known_errors():
        store = open_store(config.store_url, near=config.dedup)
        try:
            status = read_status(config, store, now=datetime.now(UTC))
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps(to_json(status), indent=2))
        return
    table = Table(title="sources")
    for col in ("name", "state", "last success", "next due", "fails", "per day", "recent polls"):
        table.add_column(col, overflow="fold")
    table.add_column("last error", overflow="fold", ratio=1)
    for s in status.sources:
        spark = Text()
        for char, kind in sparkline(s.history):
            spark.append(char, style=_SPARK_STYLE[kind])
        table.add_row(
            s.name,
            Text(s.health.value, style=_HEALTH_STYLE.get(s.health.value, "")),
            _iso(s.last_success) or "never",
            "never (gone)" if s.health.value == "gone" else _iso(s.next_due) or "now",
            str(s.failures),
            f"{s.entries_per_day:.1f}",
            spark,
            printable(s.error or ""),
        )
    out_console.print(table)
    _print_problems((s.name, s.problems) for s in status.sources)
    _print_moves((s.name, s.moved_to) for s in status.sources if s.moved_to)
    topics = Table(title="topics")
    topics.add_column("topic")
    topics.add_column("stories", justify="right")
    for t in status.topics:
        topics.add_row(t.name + (" (private)" if t.private else ""), str(t.stories))
    out_console.print(topics)
    summary = ", ".join(f"{n} {health}" for health, n in sorted(status.counts().items()))
    out_console.print(f"{len(status.sources)} sources: {summary}")


@main.command("stories")
@click.option("--topic", default=None, help="Only the stories of this topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the stories as JSON.")
@click.option(
    "--explain", "explain_id", default=None, metavar="ID", help="Why a story's entries were merged."
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-cluster every entry with the current dedup settings, keeping ids.",
)
@pass_state
def stories_cmd(
    state: _State, topic: str | None, as_json: bool, explain_id: str | None, rebuild: bool
) -> None:
    """List stories with the entries each one merged."""
    from rich.table import Table

    config = state.config
    if topic is not None and config.topic(topic) is None:
        fail(ConfigError(f"unknown topic {topic!r}", file=str(config.path), key="topics"))
    with state.context() as ctx:
        if rebuild:
            report, dirty = ctx.store.rebuild_stories(now=ctx.clock(), matchers=ctx.matchers)
            out_console.print(
                f"stories: {report.stories_before} before, {report.stories_after} after; "
                f"{report.moved} entries moved, {report.kept} ids kept; "
                f"topics to republish: {', '.join(sorted(dirty)) or 'none'}",
                markup=False,
            )
            return
        if explain_id is not None:
            story_id = _story_id(ctx.store, explain_id)
            _print_joins(story_id, ctx.store.story_joins(story_id), as_json)
            return
        rows = ctx.store.story_rows(topic)
    data = [
        {
            "id": s["id"],
            "title": next(
                (
                    e["title"]
                    for e in s["entries"]
                    if (e["source"], e["identity"])
                    == (s["canonical_source"], s["canonical_identity"])
                ),
                None,
            ),
            "published": _iso(s["published"]),
            "updated": _iso(s["updated"]),
            "topics": s["topics"],
            "canonical": {"source": s["canonical_source"], "identity": s["canonical_identity"]},
            "entries": [
                {
                    "source": e["source"],
                    "identity": e["identity"],
                    "guid": _published_guid(e),
                    "link": e["link"],
                    "link_as_published": e["link_as_published"],
                    "path": e["path"],
                    "title": e["title"],
                    "published": _iso(e["published"]),
                    "first_seen": _iso(e["first_seen"]),
                }
                for e in s["entries"]
            ],
        }
        for s in rows
    ]
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table(title="stories")
    # The whole id, without its urn:uuid: prefix: what every command accepts back.
    table.add_column("id", no_wrap=True, min_width=36)
    for col in ("title", "entries", "sources", "updated"):
        table.add_column(col)
    for s in data:
        table.add_row(
            s["id"].removeprefix("urn:uuid:"),
            s["title"] or "",
            str(len(s["entries"])),
            ", ".join(dict.fromkeys(e["source"] for e in s["entries"])),
            s["updated"] or "",
        )
    out_console.print(table)


def _story_id(store: Store, text: str) -> str:
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


def _published_guid(entry: dict[str, Any]) -> str | None:
    # A seed article's identity is made from its file name, not written by anyone.
    # (Imported here: the parsers load lxml and feedparser, which most commands never need.)
    from aggregator.parse import seed_identity

    guid: str | None = entry["guid"]
    if entry["path"] is not None and guid == seed_identity(entry["path"]):
        return None
    return guid


def _print_joins(story_id: str, joins: list[dict[str, Any]], as_json: bool) -> None:
    data = [
        {
            "source": j["source"],
            "identity": j["identity"],
            "rule": j["rule"],
            "matched": {"source": j["matched_source"], "identity": j["matched_identity"]}
            if j["matched_source"]
            else None,
            "containment": j["containment"],
            "resemblance": j["resemblance"],
            "reason": j["reason"],
            "joined_at": _iso(j["joined_at"]),
        }
        for j in joins
    ]
    if as_json:
        click.echo(json.dumps({"id": story_id, "entries": data}, indent=2, ensure_ascii=False))
        return
    for d in data:
        how = {"new": "started the story", "link": "same canonical link", "content": "same text"}
        line = how.get(d["rule"], d["reason"] or d["rule"])
        if d["matched"]:
            line += f" (vs {d['matched']['source']}: {d['matched']['identity']})"
        out_console.print(f"{d['source']}: {d['identity']}: {line}", markup=False)


@main.command("topics")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def topics_cmd(state: _State, as_json: bool) -> None:
    """List topics: query, story count, feed URL."""
    from rich.table import Table

    from aggregator.publish.paths import PathKind, topic_path

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
            "feed": config.server.base_url + topic_path(t.name, PathKind.ATOM),
            "file": str(config.data_dir / "public" / topic_path(t.name, PathKind.ATOM)),
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


def _hit_json(hit: Hit) -> dict[str, str]:
    return {"clause": hit.clause, "field": hit.field, "matched": hit.matched}


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    story = verdict.story
    return {
        "id": story.id,
        "title": story.item.title,
        "published": _iso(story.published),
        "sources": list(dict.fromkeys(o.source for o in story.provenance)) or [story.item.source],
        "matched": verdict.matched,
        "clauses": [_hit_json(h) for h in verdict.explanation.hits],
        "reasons": list(verdict.explanation.reasons),
    }


def _print_verdict(verdict: Verdict, *, mark: str) -> None:
    story = verdict.story
    out_console.print(
        f"{mark} {story.id}  {_iso(story.published)}  {story.item.title}", markup=False
    )
    for hit in verdict.explanation.hits:
        out_console.print(f"      {hit.clause} -> {hit.field}: {hit.matched}", markup=False)
    if mark != "  ":
        for reason in verdict.explanation.reasons:
            out_console.print(f"      because {reason}", markup=False)


_NOW_OPTION = click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO-TIME",
    help="Measure age: clauses and max_age against this time (default: the current time).",
)


def _now(now_text: str | None) -> datetime:
    if now_text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(now_text)
    except ValueError:
        fail(ConfigError(f"--now: not an ISO time: {now_text!r}"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _verdicts(
    config: Config,
    *,
    query: str | None,
    topic: str | None,
    now: datetime,
    ids: list[str] | None = None,
    only_matched: bool = False,
) -> tuple[TopicMatcher, list[Verdict]]:
    """Compile the query or topic and run it over the stored stories (read-only)."""
    with known_errors():
        from aggregator.preview import matcher_for, verdicts
        from aggregator.store import open_store

        matcher = matcher_for(config, query=query, topic=topic)
        store = open_store(config.store_url)
    try:
        if ids is not None:
            ids = [_story_id(store, text) for text in ids]
        found = verdicts(store, matcher, now=now, ids=ids)
        # Keep only what is printed: a preview over every story holds no texts.
        return matcher, [v for v in found if v.matched or not only_matched]
    finally:
        store.close()


@main.command("preview")
@click.option("--query", "query", default=None, help="The query to try (the topic language).")
@click.option(
    "--topic",
    default=None,
    help="Run this topic; with --query, try the query in its place (its sources, "
    "max_age and lang apply).",
)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"count": n, "stories": [...]}.')
@_NOW_OPTION
@pass_state
def preview_cmd(
    state: _State,
    query: str | None,
    topic: str | None,
    limit: int,
    as_json: bool,
    now_text: str | None,
) -> None:
    """Run a query over the stored stories without touching the config or the topics."""
    matcher, matched = _verdicts(
        state.config, query=query, topic=topic, now=_now(now_text), only_matched=True
    )
    shown = matched[:limit]
    if as_json:
        payload = {"count": len(matched), "stories": [_verdict_json(v) for v in shown]}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    out_console.print(f"{len(matched)} stories match {matcher.query}", markup=False)
    for verdict in shown:
        _print_verdict(verdict, mark="  ")
    if len(matched) > len(shown):
        out_console.print(f"... and {len(matched) - len(shown)} more (--limit)", markup=False)


@main.command("explain")
@click.argument("topic")
@click.argument("story_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one object per story.")
@_NOW_OPTION
@pass_state
def explain_cmd(
    state: _State, topic: str, story_id: str | None, as_json: bool, now_text: str | None
) -> None:
    """Say why each stored story (or STORY_ID) is in TOPIC or not, clause by clause."""
    matcher, found = _verdicts(
        state.config,
        query=None,
        topic=topic,
        now=_now(now_text),
        ids=None if story_id is None else [story_id],
    )
    if story_id is not None and not found:
        click.echo(f"aggregator: error: unknown story {story_id!r}", err=True)
        sys.exit(EXIT_CONFIG)
    if as_json:
        click.echo(json.dumps([_verdict_json(v) for v in found], indent=2, ensure_ascii=False))
        return
    out_console.print(f"topic {topic}: {matcher.query}", markup=False)
    for verdict in found:
        _print_verdict(verdict, mark="in " if verdict.matched else "out")


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
    state: _State,
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
def worker_cmd(state: _State, concurrency: int | None) -> None:
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


@main.command("migrate")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="The empty PostgreSQL database to copy the store into (postgresql://...).",
)
@pass_state
def migrate_cmd(state: _State, target: str) -> None:
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


@main.command("serve")
@_DATA_DIR_OPTION
@pass_state
def serve_cmd(state: _State, data_dir: Path | None) -> None:
    """Serve the stored stories' feeds from memory, without polling any source."""
    from aggregator.daemon import configure_logging, serve_documents

    configure_logging(state.log_level or "info", state.log_format)
    with known_errors():
        serve_documents(state.config, data_dir=data_dir)


@main.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option(
    "--timeout", type=float, default=20.0, show_default=True, help="Seconds allowed per fetch."
)
@pass_state
def discover(state: _State, url: str, as_json: bool, timeout: float) -> None:
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


@main.command("export-opml")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write [default: standard output].",
)
@pass_state
def export_opml(state: _State, out: Path | None) -> None:
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
def import_opml(state: _State, file: Path, into: Path | None) -> None:
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
