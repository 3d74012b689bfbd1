"""Conversions between model values and table rows."""

from __future__ import annotations

import dataclasses
from typing import Any

from aggregator.model import Dateline, Item, Origin, Outcome, Related, SourceState
from aggregator.stories import dedup

__all__ = [
    "ITEM_COLUMNS",
    "DedupKeys",
    "dedup_keys",
    "entry_values",
    "item_from_row",
    "state_from_row",
    "state_values",
]


#: an entry's dedup keys: (link key, content key), see :mod:`aggregator.stories.dedup`
DedupKeys = tuple[str | None, str | None]


def dedup_keys(item: Item) -> DedupKeys:
    """The item's link and content keys: pure, so a worker process may compute them."""
    return dedup.link_key(item), dedup.content_key(item)


def entry_values(item: Item, keys: DedupKeys | None = None) -> dict[str, Any]:
    """The ``entries`` columns an item sets (primary key and bookkeeping aside).

    Args:
        item: the entry.
        keys: its :func:`dedup_keys` when already computed.
    """
    link_key, content_key = dedup_keys(item) if keys is None else keys
    origin = item.origin
    return {
        "title": item.title,
        "link": item.link,
        "content_html": item.content_html,
        "summary": item.summary,
        "published": item.published,
        "updated": item.updated,
        "authors": list(item.authors),
        "tags": list(item.tags),
        "language": item.language,
        "dateline": None
        if item.dateline is None
        else {"place": item.dateline.place, "agency": item.dateline.agency},
        "related": [{"title": r.title, "link": r.link} for r in item.related],
        "origin": None
        if origin is None
        else {
            "source": origin.source,
            "title": origin.title,
            "link": origin.link,
            "feed_id": origin.feed_id,
        },
        "content_hash": item.content_hash,
        "link_key": link_key,
        "content_key": content_key,
        "link_as_published": item.link_as_published,
        "guid": item.guid,
    }


#: the ``entries`` columns :func:`item_from_row` reads
ITEM_COLUMNS = (
    "source",
    "identity",
    "title",
    "link",
    "content_html",
    "summary",
    "published",
    "updated",
    "authors",
    "tags",
    "language",
    "dateline",
    "related",
    "origin",
    "content_hash",
    "link_as_published",
    "guid",
)


def item_from_row(row: Any) -> Item:
    """The item an ``entries`` row holds."""
    m = row._mapping
    return Item(
        source=m["source"],
        identity=m["identity"],
        title=m["title"],
        link=m["link"],
        content_html=m["content_html"],
        summary=m["summary"],
        published=m["published"],
        updated=m["updated"],
        authors=tuple(m["authors"] or ()),
        tags=tuple(m["tags"] or ()),
        language=m["language"],
        dateline=Dateline(**m["dateline"]) if m["dateline"] else None,
        related=tuple(Related(r["title"], r.get("link")) for r in m["related"] or ()),
        origin=Origin(**m["origin"]) if m["origin"] else None,
        content_hash=m["content_hash"],
        link_as_published=m["link_as_published"],
        guid=m["guid"],
    )


#: ``sources`` columns that are not part of :class:`SourceState`
_NOT_STATE = ("kind", "configured", "claimed_by", "claim_expires_at", "enabled", "keep_stories")


def state_from_row(row: Any) -> SourceState:
    """The fetch state a ``sources`` row holds."""
    m = dict(row._mapping)
    for key in _NOT_STATE:
        m.pop(key, None)
    m["url_history"] = tuple(m["url_history"] or ())
    m["problems"] = tuple(m.get("problems") or ())
    m["last_outcome"] = Outcome(m["last_outcome"]) if m["last_outcome"] else None
    return SourceState(**m)


def state_values(state: SourceState) -> dict[str, Any]:
    """The ``sources`` columns a state sets, ``name`` included."""
    values = dataclasses.asdict(state)
    values["url_history"] = list(state.url_history)
    values["problems"] = list(state.problems) or None
    values["last_outcome"] = state.last_outcome.value if state.last_outcome else None
    return values
