"""The body of a webhook: one story as a JSON Feed 1.1 item, with the topic's name (pure)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aggregator.model import Story, TopicSpec

__all__ = ["webhook_body"]


def _rfc3339(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def webhook_body(story: Story, topic: TopicSpec, feed_url: str) -> str:
    """``{"topic": ..., "feed_url": ..., "item": {JSON Feed item}}`` as compact JSON."""
    item = story.item
    out: dict[str, Any] = {"id": story.id, "title": item.title}
    if item.link:
        out["url"] = item.link
    if item.content_html:
        out["content_html"] = item.content_html
    else:
        out["content_text"] = item.summary.strip() or item.title
    if item.summary:
        out["summary"] = item.summary
    out["date_published"] = _rfc3339(story.published)
    out["date_modified"] = _rfc3339(story.updated)
    if item.authors:
        out["authors"] = [{"name": name} for name in item.authors]
    if item.tags:
        out["tags"] = list(item.tags)
    if item.language:
        out["language"] = item.language
    out["_aggregator"] = {"sources": sorted({o.source for o in story.provenance} or {item.source})}
    body = {"topic": topic.name, "feed_url": feed_url, "item": out}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
