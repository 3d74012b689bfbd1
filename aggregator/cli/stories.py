"""``aggregator stories``: the stored stories, their entries, and why they were merged."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any

import click

from aggregator.cli.app import (
    State,
    fail,
    iso,
    main,
    minute,
    out_console,
    pass_state,
    story_id_of,
)
from aggregator.errors import (
    ConfigError,
)


@main.group("stories", invoke_without_command=True)
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
@click.pass_context
def stories_cmd(
    click_ctx: click.Context,
    topic: str | None,
    as_json: bool,
    explain_id: str | None,
    rebuild: bool,
) -> None:
    """List stories with the entries each one merged; edit them with the commands below.

    An editor's decisions (split, merge, hide --topic T, pin --topic T --until TIME) are kept
    in the store: re-ingest, --rebuild and migrate keep them, and a running daemon
    republishes within a tick.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    _list_stories(click_ctx.find_object(State), topic, as_json, explain_id, rebuild)


def _list_stories(
    state: State | None, topic: str | None, as_json: bool, explain_id: str | None, rebuild: bool
) -> None:
    from rich.table import Table

    assert state is not None
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
            story_id = story_id_of(ctx.store, explain_id)
            edits = [_edit_json(r) for r in ctx.store.story_edits(story_id)]
            _print_joins(story_id, ctx.store.story_joins(story_id), edits, as_json)
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
            "published": iso(s["published"]),
            "updated": iso(s["updated"]),
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
                    "published": iso(e["published"]),
                    "first_seen": iso(e["first_seen"]),
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
    # The shortest start of each id that tells the listed stories apart (8 characters at
    # least, as git abbreviates): every command accepts it back; --json has the whole id.
    ids = [s["id"].removeprefix("urn:uuid:") for s in data]
    width = short_id_width(ids)
    table.add_column("id", no_wrap=True)
    table.add_column("title", ratio=2)
    table.add_column("entries", no_wrap=True, justify="right")
    table.add_column("sources", ratio=1)
    table.add_column("updated", no_wrap=True)
    for story_id, s in zip(ids, data, strict=True):
        table.add_row(
            story_id[:width],
            s["title"] or "",
            str(len(s["entries"])),
            ", ".join(dict.fromkeys(e["source"] for e in s["entries"])),
            minute(datetime.fromisoformat(s["updated"])) if s["updated"] else "",
        )
    out_console.print(table)


def short_id_width(ids: list[str], least: int = 8) -> int:
    """The shortest prefix length, ``least`` or more, at which no two ``ids`` share a start."""
    ordered = sorted(ids)
    width = least
    for a, b in itertools.pairwise(ordered):
        common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        width = max(width, (min(len(a), len(b)) if common is None else common) + 1)
    return min(width, max((len(i) for i in ids), default=least))


def _published_guid(entry: dict[str, Any]) -> str | None:
    # A seed article's identity is made from its file name, not written by anyone.
    # (Imported here: the parsers load lxml and feedparser, which most commands never need.)
    from aggregator.parse import seed_identity

    guid: str | None = entry["guid"]
    if entry["path"] is not None and guid == seed_identity(entry["path"]):
        return None
    return guid


def _print_joins(
    story_id: str, joins: list[dict[str, Any]], edits: list[dict[str, Any]], as_json: bool
) -> None:
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
            "similarity": j["similarity"],
            "reason": j["reason"],
            "joined_at": iso(j["joined_at"]),
        }
        for j in joins
    ]
    if as_json:
        doc = {"id": story_id, "entries": data, "editor": edits}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for d in data:
        how = {"new": "started the story", "link": "same canonical link", "content": "same text"}
        line = how.get(d["rule"], d["reason"] or d["rule"])
        if d["matched"]:
            line += f" (vs {d['matched']['source']}: {d['matched']['identity']})"
        out_console.print(f"{d['source']}: {d['identity']}: {line}", markup=False)
    for e in edits:
        what = {k: v for k, v in e.items() if v and k not in ("edit", "story")}
        shown = ", ".join(f"{k} {v}" for k, v in what.items())
        out_console.print(f"editor: {e['edit']} ({shown})", markup=False)


def _edit_json(r: dict[str, Any]) -> dict[str, Any]:
    """An editor's decision over a story, as ``stories --explain`` shows it."""
    return {
        "edit": r["kind"],
        "story": r["story_id"],
        "other": r["other_story"],
        "entry": f"{r['source']}:{r['identity']}" if r["source"] else None,
        "topic": r["topic"],
        "until": iso(r["until"]),
        "made_at": iso(r["made_at"]),
    }


def _edit(state: State, kind: str, story: str, **args: Any) -> None:
    with state.context() as ctx:
        story_id = story_id_of(ctx.store, story)
        if kind == "merge":
            args["other"] = story_id_of(ctx.store, args["other"])
        topic = args.get("topic")
        if kind in ("hide", "pin") and topic is not None and state.config.topic(topic) is None:
            fail(ConfigError(f"unknown topic {args['topic']!r}", key="topics"))
        try:
            kept, dirty = ctx.store.edit_story(
                kind, story_id, now=ctx.clock(), matchers=ctx.matchers, **args
            )
        except ValueError as exc:
            click.echo(f"aggregator: error: {exc}", err=True)
            raise SystemExit(2) from exc
    topics = ", ".join(sorted(dirty)) or "none"
    out_console.print(f"{kind}: {kept}; topics to republish: {topics}", markup=False)


@stories_cmd.command("split")
@click.argument("story")
@click.argument("entry", metavar="SOURCE:IDENTITY")
@pass_state
def split_cmd(state: State, story: str, entry: str) -> None:
    """Take ENTRY out of STORY into a story of its own (a stable new id)."""
    source, sep, identity = entry.partition(":")
    if not sep or not identity:
        click.echo(f"aggregator: error: {entry!r}: give the entry as SOURCE:IDENTITY", err=True)
        raise SystemExit(2)
    _edit(state, "split", story, source=source, identity=identity)


@stories_cmd.command("merge")
@click.argument("story")
@click.argument("other")
@pass_state
def merge_cmd(state: State, story: str, other: str) -> None:
    """Merge two stories: the older keeps its id."""
    _edit(state, "merge", story, other=other)


@stories_cmd.command("hide")
@click.argument("story")
@click.option("--topic", default=None, help="Only from this topic (default: every topic).")
@pass_state
def hide_cmd(state: State, story: str, topic: str | None) -> None:
    """Keep STORY out of a topic, or of every topic."""
    _edit(state, "hide", story, topic=topic)


@stories_cmd.command("pin")
@click.argument("story")
@click.option("--topic", required=True, help="The topic to keep the story in.")
@click.option(
    "--until", default=None, metavar="TIME", help="ISO 8601 time the pin ends (default: never)."
)
@pass_state
def pin_cmd(state: State, story: str, topic: str, until: str | None) -> None:
    """Keep STORY in TOPIC whatever its query says, until TIME."""
    from datetime import datetime

    when = None
    if until is not None:
        try:
            when = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            click.echo(f"aggregator: error: --until {until!r}: not an ISO 8601 time", err=True)
            raise SystemExit(2) from None
    _edit(state, "pin", story, topic=topic, until=when)
