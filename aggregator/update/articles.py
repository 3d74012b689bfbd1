"""``full_content``: a remote source's new entries with the articles of their pages."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.model import SourceSpec
from aggregator.update.context import Context, stages_of
from aggregator.update.kinds import Hints

if TYPE_CHECKING:
    from aggregator.engine.digests import FeedDigest
    from aggregator.sources.http import Fetcher

__all__ = ["with_articles"]

log = logging.getLogger(__name__)


async def with_articles(
    spec: SourceSpec,
    ctx: Context,
    fetcher: Fetcher,
    first: FeedDigest,
    now: datetime,
    hints: Hints,
) -> tuple[FeedDigest, bool, Hints, int]:
    """The feed's digest with the full articles of its new entries (``full_content``).

    Returns:
        The digest; whether entries were held back for the next poll (their
        host is backing off, or over ``max_pages``); the hints, with the host's
        wait when it asked for one; the pages' response bytes.
    """
    from aggregator.engine.pages import digest_full

    stages = stages_of(ctx)
    full = await digest_full(
        first,
        spec=spec,
        fetcher=fetcher,
        pool=stages.pool,
        store=ctx.store,
        now=now,
        topics=ctx.config.topics,
        near=ctx.config.dedup,
    )
    if full.held:
        log.info("%s: %d new entries wait for the next poll", spec.name, full.held)
    if full.retry_after is not None:
        hints = replace(hints, retry_after=full.retry_after)
    return full.digest, full.held > 0, hints, full.received
