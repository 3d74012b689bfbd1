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

from aggregator.model import FileChange, Item, RuleDrop
from aggregator.records import ItemRecord

__all__ = ["FeedDigest", "Page", "SeedDigest"]


@dataclass(frozen=True, slots=True)
class FeedDigest:
    """A fetched feed, parsed and normalised."""

    #: each item, with its keys, sketch and topics once ``finish_digest`` has run
    records: tuple[ItemRecord, ...]
    #: one line each, naming the source
    problems: tuple[str, ...]
    feed_title: str | None
    #: the feed's ``<ttl>``, a hint for the next poll
    ttl: timedelta | None
    #: the fast feed parser: "taken", or why it declined (None: not tried)
    fast_path: str | None = None
    #: the WebSub hub and topic (the feed's self URL) the feed names
    hub: str | None = None
    self_url: str | None = None
    #: entries the source's rules dropped
    dropped: tuple[RuleDrop, ...] = ()

    @property
    def items(self) -> tuple[Item, ...]:
        """The feed's items, in order."""
        return tuple(r.item for r in self.records)


@dataclass(frozen=True, slots=True)
class SeedDigest:
    """A chunk of new or changed seed files, read, parsed and normalised."""

    changes: tuple[FileChange, ...]
    problems: tuple[str, ...]
    #: files whose bytes really changed (not only their mtime)
    touched: int
    #: each item of ``changes``, in order, with its keys, sketch and topics
    records: tuple[ItemRecord, ...] = ()
    #: entries the source's rules dropped
    dropped: tuple[RuleDrop, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """An entry's fetched web page."""

    #: the final URL, after redirects: the base of its relative links
    url: str
    body: bytes
    #: response headers, names lower-case (a plain dict: it crosses to a worker)
    headers: dict[str, str]
