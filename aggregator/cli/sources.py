"""``aggregator sources`` and ``status``: each source's state and health."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.app import (
    HINT_SAMPLE,
    State,
    age,
    iso,
    known_errors,
    main,
    out_console,
    pass_state,
    relative,
)
from aggregator.cli.rules import print_rest, print_rest_and_rules, rules_row, source_rest
from aggregator.config.units import format_duration
from aggregator.errors import (
    printable,
    redact_urls,
)
from aggregator.model import SourceKind, SourceSpec, SourceState
from aggregator.text.teasers import TeaserHint, teaser_hint

if TYPE_CHECKING:
    from aggregator.status.snapshot import Status


@main.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def sources_cmd(state: State, as_json: bool) -> None:
    """List sources with their state: items, last result, last error."""
    from aggregator.update.cadence import cadences

    with state.context() as ctx:
        states = {s.name: s for s in ctx.store.states()}
        counts = ctx.store.entry_counts()
        cadence = cadences(ctx.config, ctx.store, datetime.now(UTC))
        ruled = ctx.store.rule_stats()
        # Summary-only feeds: suggest full_content where it is not set.
        hints = {
            spec.name: teaser_hint(ctx.store.recent_contents(spec.name, HINT_SAMPLE))
            for spec in state.config.sources
            if spec.kind is SourceKind.URL and spec.full_content is None and counts.get(spec.name)
        }
    rows = [
        {
            **_source_row(
                spec, states.get(spec.name), counts.get(spec.name, 0), hints.get(spec.name)
            ),
            **source_rest(spec, states.get(spec.name)),
            "rules": rules_row(spec, ruled.get(spec.name)),
            **cadence[spec.name],
        }
        for spec in state.config.sources
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_sources(rows)


def _source_row(
    spec: SourceSpec, st: SourceState | None, items: int, hint: TeaserHint | None
) -> dict[str, Any]:
    """One source's row of ``aggregator sources``: its config, with its stored state if any."""
    row: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind.value,
        "location": spec.location,
        "configured": spec.location,
        "items": items,
        "last_outcome": None,
        "last_status": None,
        "last_attempt_at": None,
        "last_success_at": None,
        "next_due_at": None,
        "consecutive_failures": 0,
        "last_error_class": None,
        "last_error": None,
        "discovered_feed": None,
        "url_history": [],
        "gone": False,
        "full_content": spec.full_content is not None,
        "hint": str(hint) if hint else None,
        "problems": [],
        "moved_to": None,
    }
    if st is not None:
        row.update(_state_fields(st))  # same keys: the row's order stays
    return row


def _state_fields(st: SourceState) -> dict[str, Any]:
    """The fields of a source's row that its stored state gives."""
    return {
        "location": st.location,
        "last_outcome": st.last_outcome.value if st.last_outcome else None,
        "last_status": st.last_status,
        "last_attempt_at": iso(st.last_attempt_at),
        "last_success_at": iso(st.last_success_at),
        # Gone: never polled again (no date rather than the end of time).
        "next_due_at": None if st.gone else iso(st.next_due_at),
        "consecutive_failures": st.consecutive_failures,
        "last_error_class": st.last_error_class,
        "last_error": st.last_error,
        "discovered_feed": st.discovered_feed,
        "url_history": list(st.url_history),
        "gone": st.gone,
        "problems": list(st.problems),
        # A permanent redirect seen, not yet confirmed (the location is the confirmed one).
        "moved_to": st.moved_to,
    }


def _print_sources(rows: list[dict[str, Any]]) -> None:
    """The sources' table, then their problems, moves and hints, one line each."""
    from rich.table import Table

    table = Table(title="sources")
    # Short columns never wrap (a time reads "in 29m"); the location and the error fold.
    table.add_column("name", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("location", overflow="fold", ratio=2)
    table.add_column("items", no_wrap=True, justify="right")
    table.add_column("last result", no_wrap=True)
    table.add_column("fails", no_wrap=True, justify="right")
    table.add_column("next due", no_wrap=True)
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["location"],
            str(r["items"]),
            r["last_outcome"] or "never",
            str(r["consecutive_failures"]),
            _next_due(r),
        )
    out_console.print(table)
    _print_errors((r["name"], r["last_error"]) for r in rows)
    print_rest_and_rules(rows)
    _print_problems((r["name"], r["problems"]) for r in rows)
    _print_cadences(rows)
    _print_moves(
        (r["name"], redact_urls(r["moved_to"] or r["location"]))
        for r in rows
        if r["moved_to"] or r["location"] != r["configured"]
    )
    for r in rows:
        if r["hint"]:
            out_console.print(f"hint: {r['name']}: {r['hint']}", markup=False, highlight=False)


def _print_errors(errors: Iterable[tuple[str, str | None]]) -> None:
    """Each source's last error, one line each below the table (a column would fold it)."""
    for name, error in errors:
        if error:
            text = error.removeprefix(f"{name}: ")
            out_console.print(printable(f"error: {name}: {text}"), markup=False, highlight=False)


def _print_cadences(rows: Iterable[dict[str, Any]]) -> None:
    """Each source's interval now and why (fixed, its rhythm, WebSub), one line each."""
    for r in rows:
        every = format_duration(timedelta(seconds=r["interval"]))
        line = f"interval: {r['name']}: {every} ({r['why']})"
        sub = r["websub"]
        if sub is not None and sub["state"] != "active":
            line += f"; WebSub {sub['state']}" + (f": {sub['error']}" if sub["error"] else "")
        out_console.print(printable(line), markup=False, highlight=False)


def _print_webhooks(rows: Iterable[dict[str, Any]]) -> None:
    """Each webhook target's deliveries, one line each."""
    for r in rows:
        line = (
            f"webhook: {r['topic']} -> {redact_urls(r['target'])}: {r['delivered']} delivered, "
            f"{r['pending']} pending, {r['failed']} given up"
        )
        if r["last_error"]:
            line += f"; last error: {r['last_error']}"
        out_console.print(printable(line), markup=False, highlight=False)


def _next_due(row: dict[str, Any]) -> str:
    if row["gone"]:
        return "never (gone)"
    if row["disabled"]:
        return "never (disabled)"
    due = row["next_due_at"]
    return due_in(datetime.fromisoformat(due) if due else None)


def due_in(due: datetime | None, now: datetime | None = None) -> str:
    """When a source is polled next: ``in 29m``, ``now``, or ``overdue 3h`` (nothing polled it)."""
    now = now or datetime.now(UTC)
    if due is None or now - timedelta(minutes=1) < due <= now:
        return "now"  # the next tick takes it
    if due < now:
        return f"overdue {age(now - due)}"
    return relative(due, now) or "now"


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
    "disabled": "dim",
}


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help='Print {"sources": [...], "topics": [...]}.')
@pass_state
def status_cmd(state: State, as_json: bool) -> None:
    """Each source's health, last success, next poll and recent polls; topics' stories.

    It only reads the store, so it runs beside the daemon.
    """
    from aggregator.status.snapshot import to_json
    from aggregator.store import open_store
    from aggregator.update import read_status
    from aggregator.update.cadence import cadences, webhook_rows

    config = state.config
    now = datetime.now(UTC)
    with known_errors():
        store = open_store(config.store_url, near=config.dedup)
        try:
            status = read_status(config, store, now=now)
            cadence = cadences(config, store, now)
            webhooks = webhook_rows(store)
        finally:
            store.close()
    if as_json:
        body = to_json(status)
        for source in body["sources"]:
            source.update(cadence.get(source["name"], {}))  # interval, why, websub
        click.echo(json.dumps({**body, "webhooks": webhooks}, indent=2))
        return
    _print_status(status, cadence, webhooks)


def _print_status(status: Status, cadence: dict[str, Any], webhooks: list[dict[str, Any]]) -> None:
    """``aggregator status``'s tables and lines."""
    from rich.table import Table
    from rich.text import Text

    from aggregator.status.snapshot import sparkline

    table = Table(title="sources")
    table.add_column("name", overflow="fold")
    for col in ("state", "last success", "next due"):
        table.add_column(col, no_wrap=True)
    table.add_column("fails", no_wrap=True, justify="right")
    table.add_column("per day", no_wrap=True, justify="right")
    table.add_column("recent polls", overflow="fold")
    for s in status.sources:
        spark = Text()
        for char, kind in sparkline(s.history):
            spark.append(char, style=_SPARK_STYLE[kind])
        table.add_row(
            s.name,
            Text(s.health.value, style=_HEALTH_STYLE.get(s.health.value, "")),
            relative(s.last_success) or "never",
            _status_next_due(s.health.value, s.next_due),
            str(s.failures),
            f"{s.entries_per_day:.1f}",
            spark,
        )
    out_console.print(table)
    _print_errors((s.name, s.error) for s in status.sources)
    print_rest((s.name, s.disabled, iso(s.disabled_at)) for s in status.sources)
    _print_problems((s.name, s.problems) for s in status.sources)
    _print_cadences({"name": s.name, **cadence[s.name]} for s in status.sources)
    _print_moves((s.name, s.moved_to) for s in status.sources if s.moved_to)
    topics = Table(title="topics")
    topics.add_column("topic")
    topics.add_column("stories", justify="right")
    for t in status.topics:
        topics.add_row(t.name + (" (private)" if t.private else ""), str(t.stories))
    out_console.print(topics)
    _print_webhooks(webhooks)
    summary = ", ".join(f"{n} {health}" for health, n in sorted(status.counts().items()))
    count = len(status.sources)
    out_console.print(f"{count} source{'' if count == 1 else 's'}: {summary}")


def _status_next_due(health: str, due: datetime | None) -> str:
    if health in ("gone", "disabled"):
        return f"never ({health})"
    return due_in(due)
