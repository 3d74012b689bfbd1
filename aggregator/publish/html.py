"""HTML pages (index and per-topic) from Jinja2 templates; the only module importing Jinja2.

Autoescaping is on for every template: story titles and summaries are plain
text and are escaped; no story HTML is inserted into these pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

from aggregator.language import direction
from aggregator.model import Story
from aggregator.normalise import language_tag
from aggregator.publish._base import (
    EPOCH,
    HTML_TYPE,
    Document,
    Site,
    TopicFeed,
    TopicUrls,
    make_document,
    newest_updated,
    rfc3339,
    story_anchor,
    web_url,
    xml_safe,
)
from aggregator.publish.paths import INDEX_PATH, OPML_PATH

__all__ = ["render_index", "render_topic_page"]

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
class _Links:
    html: str
    atom: str
    rss: str
    json: str
    archive: str | None


def _links(urls: TopicUrls, archive_count: int) -> _Links:
    return _Links(
        html=urls.url(urls.html_path),
        atom=urls.url(urls.atom_path),
        rss=urls.url(urls.rss_path),
        json=urls.url(urls.json_path),
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


def render_index(site: Site, feeds: Sequence[TopicFeed], archive_counts: Sequence[int]) -> Document:
    """Render the index page (``/``) listing ``feeds`` (callers pass public topics only).

    Args:
        site: site-wide facts.
        feeds: the public topics, in listing order.
        archive_counts: number of archive pages of each topic, parallel to ``feeds``.

    Returns:
        The document at ``""`` (served at ``/``, exported as ``index.html``).
    """
    rows = [
        _TopicRow(
            name=f.topic.name,
            title=f.topic.title,
            description=f.topic.description,
            count=len(f.stories),
            updated=newest_updated(f.stories) if f.stories else None,
            links=_links(TopicUrls(site.base_url, f.topic.name, ""), n),
        )
        for f, n in zip(feeds, archive_counts, strict=True)
    ]
    updated = max((newest_updated(f.stories) for f in feeds), default=EPOCH)
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
    feed: TopicFeed,
    urls: TopicUrls,
    stories: Sequence[Story],
    archive_count: int,
) -> Document:
    """Render one topic's HTML page listing its recent stories.

    Args:
        site: site-wide facts.
        feed: the topic (for title, description and total count).
        urls: where this rendering lives (public or private).
        stories: the current feed's stories, newest first.
        archive_count: number of archive pages (to link the newest).

    Returns:
        The document at ``urls.html_path`` (exported as ``<path>/index.html``).
    """
    body = _ENV.get_template("topic.html").render(
        site=site,
        topic=feed.topic,
        total=len(feed.stories),
        stories=[_story_row(s) for s in stories],
        links=_links(urls, archive_count),
        index_url=site.base_url,
        public=not urls.prefix,
    )
    return make_document(
        urls.html_path, xml_safe(body).encode("utf-8"), HTML_TYPE, newest_updated(feed.stories)
    )
