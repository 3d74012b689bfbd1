"""``aggregator stories``: the stored stories, their entries, and why they were merged."""

from __future__ import annotations

import json
from typing import Any

import click

from aggregator.cli.app import (
    State,
    fail,
    iso,
    main,
    out_console,
    pass_state,
    story_id_of,
)
from aggregator.errors import (
    ConfigError,
)


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
    state: State, topic: str | None, as_json: bool, explain_id: str | None, rebuild: bool
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
            story_id = story_id_of(ctx.store, explain_id)
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
            "similarity": j["similarity"],
            "reason": j["reason"],
            "joined_at": iso(j["joined_at"]),
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
