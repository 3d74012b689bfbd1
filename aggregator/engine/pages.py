"""Full articles for summary-only feeds: fetch each new entry's page, politely, once.

For a source with ``full_content``, after its feed is parsed:

* an entry the store has never held is *new*: its link is fetched through the
  shared :class:`~aggregator.sources.http.Fetcher` (SSRF guard, byte cap,
  deadline, and the per-host limit its feed shares), and its article is
  extracted and sanitised in the CPU stage. A failure keeps the feed's text
  and is one problem line on the source;
* an entry the store holds keeps the body it got when it first came (the
  article, or the teaser when its page failed): the stored entry is the
  record that its page was handled, so no page is fetched twice, across
  polls and restarts alike. The feed's text stays its summary either way;
* a 429, or any error with ``Retry-After``, on a page backs the whole host off
  (:meth:`~aggregator.sources.http.Fetcher.back_off`); the new entries whose
  pages were not tried are held for the next poll, which is due no earlier;
* one update fetches at most ``max_pages`` pages (the feed's first new
  entries); the other new entries are held for the next poll, so a feed of a
  thousand new entries cannot make one update run for hours.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from aggregator.engine.digests import FeedDigest, Page
from aggregator.engine.pool import CpuPool
from aggregator.errors import BackoffError, HTTPStatusError, SourceError, redact_urls
from aggregator.model import FullContent, Item, SourceSpec, TopicSpec
from aggregator.sources.http import Fetcher
from aggregator.store import Store
from aggregator.stories.neardup import NearDupSettings

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_PAGES",
    "EXTRACTION_SHARE",
    "PAGES_IN_FLIGHT",
    "PAGE_ACCEPT",
    "FullDigest",
    "PagePlan",
    "digest_full",
    "extraction_lane",
    "plan_pages",
]

log = logging.getLogger(__name__)

#: what an article page request accepts
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
#: how long a host that answered 429 without ``Retry-After`` is left alone
DEFAULT_BACKOFF = timedelta(minutes=5)
#: pages of one source fetched or extracted at once: bounds the bodies held in memory
PAGES_IN_FLIGHT = 4
#: a pool's workers that article extraction may hold at once, of all sources together
EXTRACTION_SHARE = 0.5
#: (pool, event loop) -> the semaphore of its extraction lane
_LANES: weakref.WeakKeyDictionary[CpuPool, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def extraction_lane(pool: CpuPool) -> asyncio.Semaphore:
    """The slots of ``pool`` article extraction may use: half its workers (at least one).

    Extraction costs seconds on a large page, feeds and seeds milliseconds:
    without a lane, two hostile pages held both workers of a 2-core machine and
    an unrelated seed folder waited 33 s instead of 1 s.
    """
    loop = asyncio.get_running_loop()
    held = _LANES.get(pool)
    if held is None or held[0] is not loop:
        slots = max(1, int(max(1, pool.workers) * EXTRACTION_SHARE))
        held = (loop, asyncio.Semaphore(slots))
        _LANES[pool] = held
    return held[1]


#: pages one update fetches at most (``full_content.max_pages``): bounds an update's time
DEFAULT_MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class PagePlan:
    """What to do with each item of a feed: fetch its page, or keep its stored body."""

    #: item index -> the indexes of the new items with that identity (a
    #: feed may repeat an entry); the first one's link is fetched
    fetch: Mapping[int, tuple[int, ...]]
    #: item index -> the body stored when its entry first came
    keep: Mapping[int, str]
    #: item index -> the content hash stored for it, for every item the store holds
    hashes: Mapping[int, str]
    #: new items over the update's page budget: left for the next poll
    later: tuple[int, ...] = ()


def plan_pages(
    items: Sequence[Item],
    known: Mapping[str, tuple[str, str] | None],
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> PagePlan:
    """Decide, from what the store holds, which pages to fetch.

    Args:
        items: the feed's items, in order.
        known: identity -> stored (content, content hash), or None for a
            removed entry (:meth:`~aggregator.store.api.Store.entry_contents`).
        max_pages: the most pages to fetch; the feed's first new entries get them.

    Returns:
        New items with a link to fetch; held items whose stored body differs
        from the feed's (an article fetched before) to keep; new items over
        the budget, for later. A removed entry is none of these: the store
        will not take it back.
    """
    fetch: dict[int, tuple[int, ...]] = {}
    first: dict[str, int] = {}
    keep: dict[int, str] = {}
    hashes: dict[int, str] = {}
    for index, item in enumerate(items):
        if item.identity in known:
            stored = known[item.identity]
            if stored is None:
                continue
            body, hashes[index] = stored
            if body != item.content_html:
                keep[index] = body
        elif item.link:
            lead = first.setdefault(item.identity, index)
            fetch[lead] = (*fetch.get(lead, ()), index)
    leads = list(fetch)
    later = tuple(index for lead in leads[max_pages:] for index in fetch.pop(lead))
    return PagePlan(fetch=fetch, keep=keep, hashes=hashes, later=later)


@dataclass(frozen=True, slots=True)
class FullDigest:
    """A feed's digest with full articles, and what fetching them asks of the schedule."""

    digest: FeedDigest
    #: new entries that got their article
    articles: int
    #: new entries left for the next poll: their host is backing off, or over max_pages
    held: int
    #: when the backing-off host may be asked again
    retry_after: datetime | None
    #: the pages' response bytes
    received: int = 0


async def digest_full(
    first: FeedDigest,
    *,
    spec: SourceSpec,
    fetcher: Fetcher,
    pool: CpuPool,
    store: Store,
    now: datetime,
    topics: Sequence[TopicSpec] = (),
    near: NearDupSettings | None = None,
) -> FullDigest:
    """Fetch the pages of new entries, swap in their articles and finish the digest.

    Never raises for a page: each failure is a problem line of the digest,
    naming the source and the page.

    Args:
        first: the feed read and normalised, not finished
            (:func:`~aggregator.engine.work.read_feed`).
        spec: the source; ``spec.full_content`` holds the selector, its
            ``timeout`` and ``max_bytes`` bound each page.
        fetcher: the shared fetcher.
        pool: the CPU stage.
        store: to learn which entries are new.
        now: the time of the update.
        topics: the configured topics.
        near: the ``dedup:`` settings.

    Returns:
        The finished digest and the counts.
    """
    options = spec.full_content or FullContent()
    items = first.items
    known = await asyncio.to_thread(
        store.entry_contents, spec.name, [item.identity for item in items]
    )
    plan = plan_pages(items, known, max_pages=options.max_pages)
    bodies: dict[int, str] = dict(plan.keep)
    # (item index, line): reported in the feed's order, whatever order pages finish in
    problems: list[tuple[int, str]] = []
    held: list[int] = list(plan.later)
    waits: list[datetime] = []
    received: list[int] = []
    slots = asyncio.Semaphore(PAGES_IN_FLIGHT)

    async def one(lead: int) -> None:
        url = items[lead].link
        assert url is not None  # plan_pages fetches linked items only
        async with slots:
            try:
                resp = await fetcher.fetch(
                    url,
                    source=spec.name,
                    headers={"Accept": PAGE_ACCEPT},
                    timeout=spec.timeout.total_seconds(),
                    max_bytes=spec.max_bytes,
                )
                received.append(len(resp.body))
                page = Page(resp.url, resp.body, dict(resp.headers))
                async with extraction_lane(pool):
                    body: str = await pool.run(
                        spec.name,
                        "aggregator.engine.articles:extract_page",
                        page,
                        source=spec.name,
                        selector=options.selector,
                    )
            except BackoffError as exc:
                held.extend(plan.fetch[lead])
                waits.append(exc.retry_after)
                return
            except HTTPStatusError as exc:
                if exc.status == 429 or exc.retry_after is not None:
                    asked = exc.retry_after or datetime.now(UTC) + DEFAULT_BACKOFF
                    # The host that answered: after a redirect, not the link's.
                    waits.append(fetcher.back_off(exc.url or url, asked))
                problems.append((lead, _problem(spec, exc.message)))
                return
            except SourceError as exc:
                problems.append((lead, _problem(spec, exc.message)))
                return
            except Exception as exc:  # an extractor bug on one page must not fail the feed
                log.exception("%s: %s: unexpected error while extracting", spec.name, url)
                unexpected = f"{url}: unexpected {type(exc).__name__}: {exc}"
                problems.append((lead, _problem(spec, unexpected)))
                return
        for index in plan.fetch[lead]:
            bodies[index] = body

    await asyncio.gather(*(one(lead) for lead in plan.fetch))
    digest: FeedDigest = await pool.run(
        spec.name,
        "aggregator.engine.articles:digest_articles",
        replace(first, problems=(*first.problems, *(line for _, line in sorted(problems)))),
        bodies=bodies,
        stored=plan.hashes,
        held=held,
        now=now,
        topics=topics,
        near=near,
    )
    return FullDigest(
        digest=digest,
        articles=sum(len(plan.fetch[lead]) for lead in plan.fetch if lead in bodies),
        held=len(held),
        retry_after=max(waits, default=None),
        received=sum(received),
    )


def _problem(spec: SourceSpec, message: str) -> str:
    return redact_urls(f"{spec.name}: full_content: {message}; kept the feed's text")
