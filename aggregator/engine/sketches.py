"""An item's near-duplicate sketch, made in a parse worker, with its embedding when asked.

With ``dedup.semantic`` the title and lead's embedding rides in the sketch
(:attr:`aggregator.stories.neardup.Sketch.meaning`): the worker loads the model, and
the daemon's own process, which only compares stored vectors, never does.
"""

from __future__ import annotations

from dataclasses import replace

from aggregator.model import Item, NearDupSettings
from aggregator.stories import neardup

__all__ = ["sketch_of"]


def sketch_of(item: Item, near: NearDupSettings) -> neardup.Sketch | None:
    """The item's near-duplicate sketch, with its embedding when ``dedup.semantic`` is on."""
    sketch = neardup.sketch(item, near)
    if sketch is None or not near.semantic:
        return sketch
    from aggregator.store.semindex import meaning

    return replace(sketch, meaning=meaning(item, near))
