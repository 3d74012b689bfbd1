"""HTML pages (index, per-topic, operator status) from Jinja2 templates; the only Jinja2 importer.

Autoescaping is on for every template: story titles and summaries are plain
text and are escaped; no story HTML is inserted into these pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from aggregator.errors import redact_urls
from aggregator.model import Story
from aggregator.publish._base import (
    EPOCH,
    HTML_TYPE,
    Document,
    Site,
    TopicSummary,
    TopicUrls,
    make_document,
    rfc3339,
    story_anchor,
    web_url,
    xml_safe,
)
from aggregator.publish.charts import Chart, entry_bars, hour_bars, poll_bars, publish_bars
from aggregator.publish.paths import INDEX_PATH, OPML_PATH, feed_formats
from aggregator.status.snapshot import SourceStatus, Status
from aggregator.text.tags import direction, language_tag

__all__ = ["render_index", "render_status_page", "render_topic_page"]

#: URL path of the index page (``/``)

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _human(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


_ENV.filters["rfc3339"] = rfc3339
_ENV.filters["human"] = _human


@dataclass(frozen=True)
class _FeedLink:
    #: the format's label (``Atom``) and media type, from the formats table
    label: str
    media_type: str
    url: str


@dataclass(frozen=True)
class _Links:
    html: str
    #: one per row of the formats table, in its order
    feeds: tuple[_FeedLink, ...]
    archive: str | None


def _links(urls: TopicUrls, archive_count: int) -> _Links:
    return _Links(
        html=urls.url(urls.html_path),
        feeds=tuple(
            _FeedLink(row.label, row.media_type, urls.url(urls.feed_path(row)))
            for row in feed_formats()
        ),
        archive=urls.url(urls.archive_path(archive_count)) if archive_count else None,
    )


@dataclass(frozen=True)
class _TopicRow:
    name: str
    title: str
    description: str
    count: int
    updated: datetime | None
    links: _Links


def render_index(site: Site, topics: Sequence[TopicSummary]) -> Document:
    """Render the index page (``/``) listing ``topics`` (callers pass public topics only).

    Args:
        site: site-wide facts.
        topics: the public topics, in listing order.

    Returns:
        The document at ``""`` (served at ``/``, exported as ``index.html``).
    """
    rows = [
        _TopicRow(
            name=t.topic.name,
            title=t.topic.title,
            description=t.topic.description,
            count=t.count,
            updated=t.updated,
            links=_links(TopicUrls(site.base_url, t.topic.name, ""), t.archive_count),
        )
        for t in topics
    ]
    updated = max((t.updated or EPOCH for t in topics), default=EPOCH)
    body = _ENV.get_template("index.html").render(
        site=site, topics=rows, opml_url=site.base_url + OPML_PATH
    )
    return make_document(INDEX_PATH, xml_safe(body).encode("utf-8"), HTML_TYPE, updated)


@dataclass(frozen=True)
class _StoryRow:
    anchor: str
    title: str
    link: str | None
    published: datetime
    dateline: str | None
    summary: str
    sources: tuple[str, ...]
    #: BCP 47 tag of the story's text, for ``lang``; None when unknown
    language: str | None
    #: ``rtl`` for Arabic-script (and other right-to-left) text, ``ltr``, or ``auto``
    #: when the language is unknown and the browser must judge by the text
    direction: str


def _story_row(story: Story) -> _StoryRow:
    item = story.item
    dateline = None
    if item.dateline is not None:
        d = item.dateline
        dateline = f"{d.place} ({d.agency})" if d.agency else d.place
    names: list[str] = []
    for origin in story.provenance or ((item.origin,) if item.origin else ()):
        name = origin.title or origin.source
        if name not in names:
            names.append(name)
    return _StoryRow(
        story_anchor(story),
        item.title,
        web_url(item.link),
        story.published,
        dateline,
        item.summary,
        tuple(names),
        *_text_direction(item.language),
    )


def _text_direction(language: str | None) -> tuple[str | None, str]:
    """``(lang, dir)`` for a story's text: from its language, else left to the browser."""
    tag = language_tag(language)
    return tag, direction(tag) or "auto"


def render_topic_page(
    site: Site,
    summary: TopicSummary,
    urls: TopicUrls,
    stories: Sequence[Story],
) -> Document:
    """Render one topic's HTML page listing its recent stories.

    Args:
        site: site-wide facts.
        summary: the topic, its total count, newest date and archive pages.
        urls: where this rendering lives (public or private).
        stories: the current feed's stories, newest first.

    Returns:
        The document at ``urls.html_path`` (exported as ``<path>/index.html``).
    """
    body = _ENV.get_template("topic.html").render(
        site=site,
        topic=summary.topic,
        total=summary.count,
        stories=[_story_row(s) for s in stories],
        links=_links(urls, summary.archive_count),
        index_url=site.base_url,
        public=not urls.prefix,
    )
    return make_document(
        urls.html_path, xml_safe(body).encode("utf-8"), HTML_TYPE, summary.updated or EPOCH
    )


def _next_due(source: SourceStatus, now: datetime) -> str:
    if source.health.value == "gone":  # polling stopped: its next due time is the end of time
        return "never (gone)"
    if source.health.value == "disabled":
        return "never (disabled)"
    return _since(source.next_due, now) if source.next_due else "now"


def _disabled_line(source: SourceStatus) -> str:
    if source.disabled is None:
        return ""
    since = f" (since {source.disabled_at:%Y-%m-%d %H:%M} UTC)" if source.disabled_at else ""
    return f"{source.disabled}{since}"


def _since(value: datetime | None, now: datetime) -> str:
    """``value`` relative to ``now``, coarsely: "3 min ago", "in 2 h", "never"."""
    if value is None:
        return "never"
    delta = value - now
    ahead = delta > timedelta(0)
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 172800:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86400:.0f} d"
    return f"in {text}" if ahead else f"{text} ago"


@dataclass(frozen=True)
class _SourceCard:
    name: str
    kind: str
    health: str
    #: the CSS class of the health badge
    badge: str
    last_success: str
    next_due: str
    failures: int
    error: str | None
    per_day: str
    chart: Chart
    #: why the source is not polled, and since when ("" when it is)
    disabled: str = ""


def render_status_page(
    status: Status,
    *,
    title: str,
    webhooks: Sequence[Mapping[str, Any]] = (),
    subscriptions: Sequence[Mapping[str, Any]] = (),
) -> bytes:
    """The operator's ``/status`` page: HTML with inline SVG charts, no script.

    Args:
        status: the snapshot to show.
        title: the site's title, to name the page.
        webhooks: each topic's webhook target and its deliveries (``topic``,
            ``target``, ``delivered``, ``pending``, ``failed``, ``last_error``).
        subscriptions: each source's WebSub subscription (``source``, ``hub``,
            ``state``, ``lease_until``, ``error``). URLs and errors are shown
            redacted, as every error on the page is.

    Returns:
        The UTF-8 HTML page.
    """
    now = status.at
    cards = [
        _SourceCard(
            name=s.name,
            kind=s.kind,
            health=s.health.value,
            badge=s.health.value.replace(" ", "-"),
            last_success=_since(s.last_success, now),
            next_due=_next_due(s, now),
            failures=s.failures,
            error=s.error,
            per_day=f"{s.entries_per_day:.1f}",
            chart=poll_bars(s.history),
            disabled=_disabled_line(s),
        )
        for s in status.sources
    ]
    # Trouble first, then by name: the operator reads the top of the page.
    order = {"gone": 0, "failing": 1, "backing-off": 2, "silent": 3, "moved": 4, "disabled": 5}
    cards.sort(key=lambda c: (order.get(c.badge, 9), c.name))
    body = _ENV.get_template("status.html").render(
        title=title,
        now=now,
        counts=sorted(status.counts().items()),
        cards=cards,
        topics=status.topics,
        polls=hour_bars(status.hours),
        entries=entry_bars(status.hours),
        publishes=publish_bars(status.publishes) if status.publishes else None,
        webhooks=[_webhook_row(w) for w in webhooks],
        subscriptions=[_subscription_row(s, now) for s in subscriptions],
    )
    return xml_safe(body).encode("utf-8")


def _webhook_row(hook: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **hook,
        "target": redact_urls(hook["target"]),
        "last_error": redact_urls(hook["last_error"] or ""),
    }


def _subscription_row(sub: Mapping[str, Any], now: datetime) -> dict[str, str]:
    return {
        "source": sub["source"],
        "hub": redact_urls(sub["hub"]),
        "state": sub["state"],
        "lease": _since(sub["lease_until"], now) if sub["lease_until"] else "",
        "error": redact_urls(sub["error"] or ""),
    }
