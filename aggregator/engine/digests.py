"""What crosses between the CPU stage's workers and the process that owns them.

Plain frozen values of light modules only: the owner unpickles these, and must
not import the parsers (lxml, feedparser, nh3, numpy) to do it. The functions
that make them live in :mod:`aggregator.engine.work` and
:mod:`aggregator.engine.articles`, and are called by name
(:meth:`~aggregator.engine.pool.CpuPool.run` with ``"module:function"``), so the
owner never imports them either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aggregator.model import FileChange, Item
from aggregator.neardup import Sketch

__all__ = ["FeedDigest", "Page", "SeedDigest"]


@dataclass(frozen=True, slots=True)
class FeedDigest:
    """A fetched feed, parsed and normalised."""

    items: tuple[Item, ...]
    #: one line each, naming the source
    problems: tuple[str, ...]
    feed_title: str | None
    #: the feed's ``<ttl>``, a hint for the next poll
    ttl: timedelta | None
    #: the topics each of ``items`` matches (None: not computed, see :func:`finish_digest`)
    matched: tuple[frozenset[str] | None, ...] = ()
    #: each item's dedup link and content keys
    keys: tuple[tuple[str | None, str | None], ...] = ()
    #: each item's near-duplicate sketch (empty when near-duplicate matching is off)
    sketches: tuple[Sketch | None, ...] = ()
    #: the fast feed parser: "taken", or why it declined (None: not tried)
    fast_path: str | None = None


@dataclass(frozen=True, slots=True)
class SeedDigest:
    """A chunk of new or changed seed files, read, parsed and normalised."""

    changes: tuple[FileChange, ...]
    problems: tuple[str, ...]
    #: files whose bytes really changed (not only their mtime)
    touched: int
    #: the topics each item of ``changes`` matches, in order
    matched: tuple[frozenset[str], ...] = ()
    #: each item's dedup link and content keys, in the same order
    keys: tuple[tuple[str | None, str | None], ...] = ()
    #: each item's near-duplicate sketch (empty when near-duplicate matching is off)
    sketches: tuple[Sketch | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """An entry's fetched web page."""

    #: the final URL, after redirects: the base of its relative links
    url: str
    body: bytes
    #: response headers, names lower-case (a plain dict: it crosses to a worker)
    headers: dict[str, str]
