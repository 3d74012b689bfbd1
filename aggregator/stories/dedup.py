"""Deduplication decisions (pure).

Three kinds of "seen before", decided in this order:

1. **the same entry again**: same source and identity. Unchanged content is
   ignored; changed content is an *update* of its story, never a new item.
2. **a removed entry coming back**: a tombstone says whether it may return
   ('deleted': yes, under its old story id) or not ('pruned' by retention).
3. **the same story from another entry**: an entry whose canonical link, or
   whose normalised text, equals that of a stored entry joins that story;
   failing both, one whose text nearly repeats a stored entry's (a copy,
   an edit, a truncation, boilerplate added: :mod:`aggregator.stories.neardup`).

Anything else mints a new story whose id is derived from the first entry's
identity, so the id is the same whichever run or machine mints it.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aggregator.model import Item
from aggregator.text.plain import cached_tokens, fingerprint_tokens, html_to_text

__all__ = [
    "STORY_NAMESPACE",
    "Action",
    "Decision",
    "content_key",
    "decide",
    "link_key",
    "mint_story_id",
    "next_updated",
    "split_story_id",
]

#: namespace of story ids (uuid5); changing it would change every new id
STORY_NAMESPACE = uuid.UUID("5b0c4f0e-3d0a-5a39-9d43-4a3f1d7f2c61")


class Action(enum.Enum):
    #: same entry, same content: nothing to do
    UNCHANGED = "unchanged"
    #: same entry, new content: update the entry (and its story if canonical)
    UPDATE = "update"
    #: a new entry of an existing story (another source, or a changed guid)
    JOIN = "join"
    #: a new story
    NEW = "new"
    #: removed by retention: never re-imported
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    #: the story the entry belongs to (None for SKIP)
    story_id: str | None


def link_key(item: Item) -> str | None:
    """The canonical link without scheme and ``www.``: http/https twins compare equal."""
    if not item.link:
        return None
    parts = urlsplit(item.link)
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


def content_key(item: Item) -> str | None:
    """A fingerprint of the title and body text; None when too short to trust."""
    # The fingerprint of "title\nbody": no token spans a line break, so it is
    # the title's tokens then the body's, which the topic document and the
    # sketch tokenise too.
    body = cached_tokens(html_to_text(item.content_html))
    return fingerprint_tokens(cached_tokens(item.title) + body)


def mint_story_id(source: str, identity: str) -> str:
    """A stable ``urn:uuid:`` for a story first seen as ``(source, identity)``."""
    # JSON keeps the pair unambiguous whatever characters the identity holds.
    name = json.dumps([source, identity], ensure_ascii=False)
    return f"urn:uuid:{uuid.uuid5(STORY_NAMESPACE, name)}"


def decide(
    item: Item,
    *,
    existing: tuple[str, str] | None,
    tombstone: tuple[str, str] | None,
    link_match: str | None,
    content_match: str | None,
    near_match: str | None = None,
) -> Decision:
    """Decide what one incoming entry is.

    Args:
        item: the normalised entry.
        existing: ``(story_id, content_hash)`` of the stored entry with the same
            source and identity, if any.
        tombstone: ``(story_id, reason)`` when this entry was removed before.
        link_match: story id of another stored entry with the same link key.
        content_match: story id of another stored entry with the same content key.
        near_match: story id of a stored entry whose text this one nearly
            repeats (:mod:`aggregator.stories.neardup`).

    Returns:
        The action and the story it concerns.
    """
    if existing is not None:
        story_id, old_hash = existing
        action = Action.UNCHANGED if old_hash == item.content_hash else Action.UPDATE
        return Decision(action, story_id)
    if tombstone is not None and tombstone[1] == "pruned":
        return Decision(Action.SKIP, None)
    match = link_match or content_match or near_match
    if match is not None:
        return Decision(Action.JOIN, match)
    if tombstone is not None:
        return Decision(Action.NEW, tombstone[0])
    return Decision(Action.NEW, mint_story_id(item.source, item.identity))


def split_story_id(source: str, identity: str, content_hash: str) -> str:
    """The id of a story an entry starts when its new text takes it out of the story it founded.

    That story keeps the id minted from the entry (:func:`mint_story_id`);
    the new one is named by the entry and the text that split it off.
    """
    return mint_story_id(source, f"{identity}#{content_hash}")


def next_updated(previous: datetime, candidate: datetime, now: datetime) -> datetime:
    """The story's new ``updated`` after its content changed: always later than before.

    The entry's own date wins when it moved forward; otherwise the time the
    change was seen, and never equal to the previous value.
    """
    value = candidate if candidate > previous else now
    return value if value > previous else previous + timedelta(seconds=1)
