"""What the CPU stage runs for ``full_content``: article pages in, entries with full bodies out.

Top-level functions of picklable values, run in a worker process (or a
thread) by :class:`~aggregator.engine.pool.CpuPool`, like
:mod:`aggregator.engine.work`. None touches the store or the network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from aggregator.engine.digests import FeedDigest, Page
from aggregator.engine.work import finish_digest
from aggregator.errors import ParseError
from aggregator.model import Item, TopicSpec
from aggregator.normalise import content_hash, sanitize_html
from aggregator.parse import parse_page
from aggregator.records import ItemRecord
from aggregator.stories.neardup import NearDupSettings
from aggregator.text.plain import html_to_text

__all__ = ["Page", "digest_articles", "extract_page", "with_content"]

log = logging.getLogger(__name__)


def extract_page(page: Page, *, source: str, selector: str | None = None) -> str:
    """The page's article body, extracted and sanitised.

    Args:
        page: the fetched page.
        source: the source's name, for messages.
        selector: a CSS selector of the body, overriding the extractor.

    Returns:
        Sanitised HTML with absolute links.

    Raises:
        ParseError: the page is not HTML or holds no article text.
    """
    article = parse_page(
        page.body, url=page.url, headers=page.headers, source=source, selector=selector
    )
    clean = sanitize_html(article, base_url=page.url)
    if not html_to_text(clean).strip():
        # What the extractor found was all markup the sanitiser removes (iframes, forms...).
        raise ParseError(source, f"{page.url}: no article text left after sanitising")
    return clean


def with_content(item: Item, content_html: str) -> Item:
    """``item`` with another body; its summary (the feed's text) and the rest are kept."""
    return replace(
        item,
        content_html=content_html,
        content_hash=content_hash(
            title=item.title,
            link=item.link,
            content_html=content_html,
            summary=item.summary,
            dateline=item.dateline,
            related=item.related,
            authors=item.authors,
            tags=item.tags,
        ),
    )


def digest_articles(
    digest: FeedDigest,
    *,
    bodies: Mapping[int, str],
    stored: Mapping[int, str] | None = None,
    held: Sequence[int] = (),
    now: datetime,
    topics: Sequence[TopicSpec] = (),
    near: NearDupSettings | None = None,
) -> FeedDigest:
    """Give items their full bodies, leave out the held ones, then finish the digest.

    Args:
        digest: the feed as :func:`~aggregator.engine.work.read_feed` left it.
        bodies: item index -> its body: an article just extracted, or the
            one stored when the entry first came.
        stored: item index -> the content hash the store holds for it: an
            item that still has it is settled (nothing to compute for it).
        held: indexes of items left for the next poll.
        now: the time of the update.
        topics: the configured topics, matched here against every item.
        near: the ``dedup:`` settings; their sketches are computed here too.

    Returns:
        The digest with topics, dedup keys and sketches of the final items.
    """
    items = list(digest.items)
    for index, body in bodies.items():
        items[index] = with_content(items[index], body)
    skip = set(held)
    kept = [i for i in range(len(items)) if i not in skip]
    hashes = stored or {}
    settled = [n for n, i in enumerate(kept) if hashes.get(i) == items[i].content_hash]
    return finish_digest(
        replace(digest, records=tuple(ItemRecord(items[i]) for i in kept)),
        now=now,
        topics=topics,
        near=near,
        settled=settled,
    )
