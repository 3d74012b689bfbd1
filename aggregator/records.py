"""One record per item: the item with what the CPU stage worked out for it.

The parse workers compute each item's dedup keys, near-duplicate sketch and
topics beside the item; the record carries them together to the one writer
and into the store's batch, so nothing is matched back by position or ``id()``.
A light module: the daemon unpickles records without importing the parsers.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.model import Item
from aggregator.stories.neardup import Sketch

__all__ = ["DedupKeys", "ItemRecord"]

#: an entry's dedup keys: (link key, content key), see :mod:`aggregator.stories.dedup`
DedupKeys = tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """An item with its dedup keys, its near-duplicate sketch and the topics it matches."""

    item: Item
    #: (link key, content key); None: not computed yet (a feed just read)
    keys: DedupKeys | None = None
    #: the near-duplicate sketch; None: none (near-duplicate matching off, or not needed)
    sketch: Sketch | None = None
    #: the topics the item matches; None: not computed (the store's predicates answer)
    topics: frozenset[str] | None = None
