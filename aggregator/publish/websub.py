"""WebSub publisher side: find the feeds a regeneration changed and ping the hub.

The HTTP POST is injected (``post(url, form) -> status``) rather than made
here: httpx lives in ``sources/http`` alone, and the caller's poster already
carries its timeouts, user agent and address policy. A failed ping is a
value in the result, never an exception: the feed is published either way
and the hub will see the change on its next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aggregator.publish.paths import feed_format, parse_path

__all__ = ["PingResult", "Poster", "changed_feeds", "ping_hub"]

#: ``await post(url, form)`` → HTTP status; raises on transport failure
Poster = Callable[[str, Mapping[str, str]], Awaitable[int]]


class Published(Protocol):
    """What the ping needs of a published document (a rendered one, or its export entry)."""

    @property
    def path(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def etag(self) -> str: ...


@dataclass(frozen=True)
class PingResult:
    """The outcome of one ping."""

    topic_url: str
    #: HTTP status of the hub's answer; None when the request failed
    status: int | None
    #: one-line error when the ping failed (transport error or non-2xx status)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _is_subscription_feed(doc: Published) -> bool:
    # Only the current public feeds advertise the hub: archives are not
    # subscribed to, and private feeds must never reach a hub (their URL is a secret).
    parsed = parse_path(doc.path)
    if parsed is None or parsed.token is not None:
        return False
    row = feed_format(parsed.kind)
    return row is not None and doc.content_type == row.content_type


def changed_feeds(before: Mapping[str, Published], after: Mapping[str, Published]) -> list[str]:
    """Paths of the public subscription feeds that are new or whose ETag changed.

    Args:
        before: the documents published previously (empty on the first run).
        after: the documents just rendered.

    Returns:
        Sorted URL paths (``topics/<name>.atom`` ...), each once; none for
        unchanged feeds, archives, pages or private feeds.
    """
    changed = []
    for path, doc in after.items():
        if not _is_subscription_feed(doc):
            continue
        old = before.get(path)
        if old is None or old.etag != doc.etag:
            changed.append(path)
    return sorted(changed)


async def ping_hub(
    hub: str,
    topic_urls: Sequence[str],
    *,
    post: Poster,
    timeout: float = 10.0,
) -> list[PingResult]:
    """Tell ``hub`` that each of ``topic_urls`` changed: one POST per URL.

    Sends ``hub.mode=publish`` and ``hub.url=<topic>`` as a form, the
    convention WebSub hubs accept for publisher notifications.

    Args:
        hub: the hub's URL.
        topic_urls: absolute URLs of the changed feeds (``base_url + path``).
        post: the HTTP poster (see :data:`Poster`).
        timeout: seconds allowed for each ping.

    Returns:
        One :class:`PingResult` per URL, in the given order.
    """

    async def one(url: str) -> PingResult:
        try:
            status = await asyncio.wait_for(
                post(hub, {"hub.mode": "publish", "hub.url": url}), timeout
            )
        except TimeoutError:
            return PingResult(
                url, None, f"WebSub ping to {hub} for {url}: timed out after {timeout}s"
            )
        except Exception as exc:  # the poster's errors are whatever its library raises
            return PingResult(url, None, f"WebSub ping to {hub} for {url}: {exc}")
        if 200 <= status < 300:
            return PingResult(url, status)
        return PingResult(url, status, f"WebSub ping to {hub} for {url}: HTTP {status}")

    return list(await asyncio.gather(*(one(url) for url in dict.fromkeys(topic_urls))))
