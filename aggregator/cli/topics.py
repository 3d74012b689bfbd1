"""``aggregator topics``, ``preview`` and ``explain``: what a topic's query selects, and why."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.app import (
    EXIT_CONFIG,
    State,
    fail,
    iso,
    known_errors,
    main,
    out_console,
    pass_state,
    story_id_of,
)
from aggregator.config import Config
from aggregator.errors import (
    ConfigError,
)
from aggregator.topics import Hit, TopicMatcher

if TYPE_CHECKING:
    from aggregator.cli.preview import Verdict


@main.command("topics")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def topics_cmd(state: State, as_json: bool) -> None:
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


def explain_source(state: State, name: str, as_json: bool) -> None:
    """``explain --source NAME``: the source's rules, their drop counts and last drops."""
    from aggregator.cli.rules import print_rule_drops, rules_row
    from aggregator.store import open_store

    config = state.config
    spec = config.source(name)
    if spec is None:
        click.echo(f"aggregator: error: unknown source {name!r}", err=True)
        sys.exit(EXIT_CONFIG)
    with known_errors():
        store = open_store(config.store_url, near=config.dedup)
        try:
            stats = store.rule_stats().get(name)
        finally:
            store.close()
    row = rules_row(spec, stats)
    if as_json:
        click.echo(json.dumps({"source": name, "rules": row}, indent=2, ensure_ascii=False))
        return
    if row is None:
        out_console.print(f"{name} has no rules: every entry is kept", markup=False)
        return
    print_rule_drops(name, row, examples=len(row["examples"]))


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    story = verdict.story
    return {
        "id": story.id,
        "title": story.item.title,
        "published": iso(story.published),
        "sources": list(dict.fromkeys(o.source for o in story.provenance)) or [story.item.source],
        "matched": verdict.matched,
        "clauses": [_hit_json(h) for h in verdict.explanation.hits],
        "reasons": list(verdict.explanation.reasons),
    }


def _print_verdict(verdict: Verdict, *, mark: str) -> None:
    story = verdict.story
    out_console.print(
        f"{mark} {story.id}  {iso(story.published)}  {story.item.title}", markup=False
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
        from aggregator.cli.preview import matcher_for, verdicts
        from aggregator.store import open_store

        matcher = matcher_for(config, query=query, topic=topic)
        store = open_store(config.store_url)
    try:
        if ids is not None:
            ids = [story_id_of(store, text) for text in ids]
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
    state: State,
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
@click.argument("topic", required=False)
@click.argument("story_id", required=False)
@click.option(
    "--source",
    "source",
    default=None,
    metavar="NAME",
    help="Instead of a topic: what this source's rules dropped at ingest, and why.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one object per story.")
@_NOW_OPTION
@pass_state
def explain_cmd(
    state: State,
    topic: str | None,
    story_id: str | None,
    source: str | None,
    as_json: bool,
    now_text: str | None,
) -> None:
    """Say why each stored story (or STORY_ID) is in TOPIC or not, clause by clause.

    With --source NAME: what the source's rules (block/keep) dropped at
    ingest since they last changed, with the last entries dropped and why.
    """
    if source is not None:
        explain_source(state, source, as_json)
        return
    if topic is None:
        click.echo("aggregator: error: give a TOPIC, or --source NAME", err=True)
        sys.exit(EXIT_CONFIG)
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
    # An editor's hide or pin of this story in this topic overrides the query.
    edits = _editor(state.config, found[0].story.id, topic) if story_id is not None else []
    if as_json:
        data = [_verdict_json(v) for v in found]
        if story_id is not None:
            data[0]["editor"] = [{"edit": e["kind"], "topic": e["topic"]} for e in edits]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    out_console.print(f"topic {topic}: {matcher.query}", markup=False)
    for verdict in found:
        _print_verdict(verdict, mark="in " if verdict.matched else "out")
    for e in edits:
        until = f" until {iso(e['until'])}" if e["until"] else ""
        scope = f"topic {e['topic']}" if e["topic"] else "every topic"
        line = f"editor: {e['kind']} ({scope}{until}): overrides the query"
        out_console.print(line, markup=False)


def _editor(config: Config, story_id: str, topic: str) -> list[dict[str, Any]]:
    """The editor's hides and pins of a story that concern ``topic``."""
    from aggregator.store import open_store

    store = open_store(config.store_url)
    try:
        rows = store.story_edits(story_id)
    finally:
        store.close()
    return [
        r
        for r in rows
        if r["kind"] in ("hide", "pin")
        and r["story_id"] == story_id
        and r["topic"] in (None, topic)
    ]
