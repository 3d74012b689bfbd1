"""JSON Feed 1.1 documents (https://www.jsonfeed.org/version/1.1/).

Provenance travels in the ``_aggregator`` extension object, as the spec's
custom-extension rule (a key starting with an underscore) allows.
"""

from __future__ import annotations

import json
from typing import Any

from aggregator.model import Story
from aggregator.publish._base import (
    JSON_FEED_TYPE,
    Document,
    Page,
    Site,
    TopicUrls,
    also_reported_by,
    body_html,
    feed_identifier,
    make_document,
    newest_updated,
    rfc3339,
    via_links,
    web_url,
)
from aggregator.text.tags import language_tag

__all__ = ["JSON_FEED_VERSION", "render_json_feed"]

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def _origin(story: Story) -> list[dict[str, str]]:
    out = []
    for origin in story.provenance:
        entry = {"source": origin.source}
        if origin.title:
            entry["title"] = origin.title
        link = web_url(origin.link)
        if link:
            entry["url"] = link
        feed_id = feed_identifier(origin.feed_id)
        if feed_id:
            entry["feed_id"] = feed_id
        out.append(entry)
    return out


def _item(story: Story, urls: TopicUrls) -> dict[str, Any]:
    item = story.item
    out: dict[str, Any] = {"id": story.id, "url": urls.story_url(story)}
    out["title"] = item.title
    content = body_html(story)
    if content:
        out["content_html"] = content
    else:
        # JSON Feed 1.1 requires content_html or content_text on every item.
        out["content_text"] = item.summary.strip() or item.title
    if item.summary.strip():
        out["summary"] = item.summary.strip()
    out["date_published"] = rfc3339(story.published)
    out["date_modified"] = rfc3339(story.updated)
    authors = [{"name": a} for a in item.authors if a.strip()]
    if authors:
        out["authors"] = authors
    tags = [t for t in item.tags if t.strip()]
    if tags:
        out["tags"] = tags
    language = language_tag(item.language)
    if language:
        out["language"] = language
    extension: dict[str, Any] = {}
    provenance = _origin(story)
    if provenance:
        extension["provenance"] = provenance
    via = via_links(story)
    if via:
        extension["via"] = via
    others = also_reported_by(story)
    if others:
        extension["also_reported_by"] = others
    if item.related:
        extension["related"] = [
            {"title": r.title, **({"url": r.link} if web_url(r.link) else {})} for r in item.related
        ]
    if extension:
        out["_aggregator"] = extension
    return out


def render_json_feed(
    site: Site,
    topic_title: str,
    description: str,
    urls: TopicUrls,
    page: Page,
    *,
    public: bool = True,
) -> Document:
    """Render the topic's JSON Feed 1.1.

    Args:
        site: site-wide facts.
        topic_title: feed title.
        description: feed description (omitted when empty).
        urls: where this rendering lives.
        page: the current feed (page 0): its stories, newest first.
        public: False for private renderings (no hub).

    Returns:
        The document at ``urls.json_path``.
    """
    stories = page.stories
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": topic_title,
        "home_page_url": urls.url(urls.html_path),
        "feed_url": urls.url(urls.json_path),
    }
    if description.strip():
        feed["description"] = description.strip()
    author: dict[str, str] = {"name": site.author_name}
    if site.author_email:
        author["url"] = f"mailto:{site.author_email}"
    feed["authors"] = [author]
    if site.language:
        feed["language"] = site.language
    if site.hub and public:
        feed["hubs"] = [{"type": "WebSub", "url": site.hub}]
    feed["items"] = [_item(story, urls) for story in stories]
    body = json.dumps(feed, ensure_ascii=False, indent=1) + "\n"
    return make_document(
        urls.json_path, body.encode("utf-8"), JSON_FEED_TYPE, newest_updated(stories)
    )
