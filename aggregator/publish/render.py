"""Rendering: every document of a topic or of the site, from its stories (pure).

Re-exported by :mod:`aggregator.publish`, which imports this module (and
with it feedgen, lxml and Jinja2) only when a renderer is first asked for:
a process that only serves the written export never loads them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from functools import cache

from aggregator.errors import PublishError
from aggregator.model import TopicSpec
from aggregator.publish._base import (
    Document,
    FeedRenderer,
    Page,
    Site,
    TopicFeed,
    TopicSummary,
    TopicUrls,
    check_token,
    paginate,
)
from aggregator.publish.atom import render_atom
from aggregator.publish.html import render_index, render_topic_page
from aggregator.publish.opml import render_opml
from aggregator.publish.paths import FeedFormat, feed_formats, private_prefix

__all__ = [
    "render_archive_page",
    "render_head",
    "render_site",
    "render_site_pages",
    "render_topic",
    "render_topic_isolated",
]

log = logging.getLogger(__name__)


def _log_failure(error: PublishError) -> None:
    log.error("%s", error)


def _render_copy(site: Site, feed: TopicFeed, urls: TopicUrls, public: bool) -> dict[str, Document]:
    topic = feed.topic
    pages = paginate(feed.stories, topic.max_items, resurface=topic.updates == "resurface")
    docs = [render_archive_page(site, topic, urls, page, public=public) for page in pages[1:]]
    docs.extend(render_head(site, TopicSummary.of(feed), urls, pages[0], public=public))
    return {doc.path: doc for doc in docs}


@cache
def _renderer(name: str) -> FeedRenderer:
    """The function a formats-table row names (``module:function``), imported once."""
    module, _, function = name.partition(":")
    renderer: FeedRenderer = getattr(importlib.import_module(module), function)
    return renderer


def _render_feed(
    row: FeedFormat, site: Site, topic: TopicSpec, urls: TopicUrls, page: Page, *, public: bool
) -> Document:
    doc = _renderer(row.renderer)(site, topic.title, topic.description, urls, page, public=public)
    if doc.path != urls.feed_path(row) or doc.content_type != row.content_type:
        raise PublishError(
            f"topic {topic.name!r}: the {row.label} renderer made {doc.path!r} "
            f"({doc.content_type}), not {urls.feed_path(row)!r} ({row.content_type})"
        )
    return doc


def render_head(
    site: Site, summary: TopicSummary, urls: TopicUrls, current: Page, *, public: bool
) -> list[Document]:
    """The documents of one topic rendering that change with its newest stories.

    The subscription feed in each format of the formats table (Atom, RSS,
    JSON Feed) and the HTML page: every change to the topic re-renders these,
    and only these besides the archive pages whose stories changed.
    """
    topic = summary.topic
    docs = [_render_feed(row, site, topic, urls, current, public=public) for row in feed_formats()]
    docs.append(render_topic_page(site, summary, urls, current.stories))
    return docs


def render_archive_page(
    site: Site, topic: TopicSpec, urls: TopicUrls, page: Page, *, public: bool
) -> Document:
    """One RFC 5005 archive page of one topic rendering."""
    return render_atom(site, topic.title, topic.description, urls, page, public=public)


def render_topic(site: Site, feed: TopicFeed) -> dict[str, Document]:
    """Render every document of one topic: its feeds (Atom, RSS, JSON Feed...), HTML page, archives.

    A public topic renders under ``topics/``; a private one renders one copy per
    token under ``private/<token>/topics/`` and nothing at the public paths.

    Args:
        site: site-wide facts.
        feed: the topic and all of its stories, in any order.

    Returns:
        ``{url path: document}``; rendering the same input twice is byte-identical.

    Raises:
        PublishError: a private topic has no token, or a token unusable in a URL path.
    """
    topic = feed.topic
    if not topic.private:
        return _render_copy(site, feed, TopicUrls(site.base_url, topic.name, ""), public=True)
    if not topic.tokens:
        raise PublishError(f"topic {topic.name!r}: private topic without any token")
    docs: dict[str, Document] = {}
    for token in topic.tokens:
        try:
            check_token(topic.name, token)
        except ValueError as exc:
            raise PublishError(str(exc)) from exc
        urls = TopicUrls(site.base_url, topic.name, private_prefix(token))
        docs.update(_render_copy(site, feed, urls, public=False))
    return docs


def render_site(
    site: Site,
    feeds: Sequence[TopicFeed],
    *,
    on_error: Callable[[PublishError], None] = _log_failure,
) -> dict[str, Document]:
    """Render the whole site: index, OPML and every topic's documents.

    Each topic renders on its own: one that fails (a field no format can
    carry, a bad token) is left out and reported to ``on_error``, and the
    others are published all the same.

    Args:
        site: site-wide facts.
        feeds: every topic (public and private) with its stories, in listing order.
        on_error: called with each topic's failure; logs it by default.

    Returns:
        ``{url path: document}``. Private topics' documents are included under
        their private paths but absent from the index and the OPML.

    Raises:
        PublishError: two topics share a name.
    """
    names = [f.topic.name for f in feeds]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PublishError(f"topics: duplicate topic names: {', '.join(dupes)}")
    docs = render_site_pages(site, [TopicSummary.of(feed) for feed in feeds])
    for feed in feeds:
        try:
            docs.update(render_topic_isolated(site, feed))
        except PublishError as exc:
            on_error(exc)
    return docs


def render_topic_isolated(site: Site, feed: TopicFeed) -> dict[str, Document]:
    """:func:`render_topic`, with any failure turned into one :class:`PublishError`.

    A story field that slipped past every guard must cost its own topic, not
    the whole site or the daemon's start.

    Raises:
        PublishError: the topic cannot be rendered; names the topic and the cause.
    """
    try:
        return render_topic(site, feed)
    except PublishError:
        raise
    except Exception as exc:  # any renderer bug is this topic's failure alone
        raise PublishError(f"topic {feed.topic.name!r}: cannot render: {exc}") from exc


def render_site_pages(site: Site, topics: Sequence[TopicSummary]) -> dict[str, Document]:
    """The documents that list every public topic: the index page and the OPML.

    :func:`render_site` without the topics' own documents, so a change in one
    topic costs that topic's documents plus these two.
    """
    public = [t for t in topics if not t.topic.private]
    index = render_index(site, public)
    opml = render_opml(site, public)
    return {index.path: index, opml.path: opml}
