"""Feed autodiscovery: from an HTML page to the feeds it offers.

This is the only module that imports beautifulsoup4. It is pure: it reads
bytes already fetched and returns candidate URLs; the caller fetches them.

Order of the result:

1. ``<link rel="alternate">`` elements with a feed type, in the page's own
   order (the page lists its main feed first; ranking by type instead would
   pick a WordPress comments feed in Atom over the main feed in RSS);
2. ``<a>`` links that obviously point to a feed (``/feed``, ``*.rss``...);
3. only when neither exists, :data:`COMMON_FEED_PATHS` on the page's site, as
   guesses to try (``via="guess"``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from aggregator.sources.sniff import looks_like_html

__all__ = [
    "COMMON_FEED_PATHS",
    "FEED_TYPES",
    "MAX_CANDIDATES",
    "DiscoveredFeed",
    "discover_feeds",
    "feed_candidates",
    "looks_like_html",
]

#: Feeds a source's poll tries from one HTML page, best first: a page listing
#: thousands of feed links must not turn one poll into thousands of requests.
#: (The whole discovery also runs under the source's one fetch deadline.)
MAX_CANDIDATES = 5

#: Paths tried on a site whose page links no feed, in this order.
COMMON_FEED_PATHS = (
    "/feed",
    "/rss",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
    "/rss.xml",
    "/feed.json",
)

#: ``<link type>`` values that name a feed, mapped to a short kind.
FEED_TYPES = {
    "application/atom+xml": "atom",
    "application/rss+xml": "rss",
    "application/rdf+xml": "rss",
    "application/x-atom+xml": "atom",
    "application/x-rss+xml": "rss",
    "application/feed+json": "json",
    "application/json": "json",
}

# Anchor targets that are feeds by their look alone.
_FEEDISH_PATH = re.compile(
    r"(?:/(?:feed|rss|atom)/?|\.(?:rss|atom)|/(?:atom|feed|rss|index)\.xml|/feed\.json)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DiscoveredFeed:
    """One feed a page offers (or a guess to try)."""

    #: absolute http(s) URL
    url: str
    #: the link's title or text, when it has one
    title: str | None
    #: the declared MIME type (``<link type>``); None for anchors and guesses
    type: str | None
    #: where it came from: ``"link"`` (``<link rel=alternate>``), ``"anchor"``
    #: (an ``<a>`` to an obvious feed URL) or ``"guess"`` (a common path)
    via: str = "link"


def _http_url(base: str, href: str) -> str | None:
    """Resolve ``href`` against ``base``; None unless the result is http(s)."""
    url = urljoin(base, href.strip())
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def _attr(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):
        return " ".join(value)
    return value


def discover_feeds(html: bytes, *, base_url: str) -> list[DiscoveredFeed]:
    """List the feeds an HTML page offers, best first.

    Args:
        html: the page's bytes (any encoding; bs4 detects it).
        base_url: the page's final URL, for relative links (a ``<base href>``
            in the page takes precedence).

    Returns:
        Linked feeds, then obvious feed anchors, each URL once; when there are
        none, guesses at :data:`COMMON_FEED_PATHS` on the page's site.
        Never raises for bad markup: an unreadable page gives only guesses.
    """
    with warnings.catch_warnings():
        # bs4 warns about XML given to the HTML parser and the like; a page is
        # whatever the server sent, so those warnings carry no news.
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(html, "html.parser")

    base = base_url
    base_tag = soup.find("base", href=True)
    if isinstance(base_tag, Tag):
        href = _attr(base_tag, "href")
        if href:
            base = _http_url(base_url, href) or base_url

    found: list[DiscoveredFeed] = []
    seen: set[str] = set()

    def add(feed: DiscoveredFeed) -> None:
        if feed.url not in seen:
            seen.add(feed.url)
            found.append(feed)

    for link in soup.find_all("link", href=True):
        if not isinstance(link, Tag):
            continue
        rel = {r.lower() for r in (_attr(link, "rel") or "").split()}
        mime = (_attr(link, "type") or "").split(";", 1)[0].strip().lower()
        if "alternate" not in rel or mime not in FEED_TYPES:
            continue
        url = _http_url(base, _attr(link, "href") or "")
        if url:
            add(DiscoveredFeed(url, _text(_attr(link, "title")), mime, "link"))

    for anchor in soup.find_all("a", href=True):
        if not isinstance(anchor, Tag):
            continue
        url = _http_url(base, _attr(anchor, "href") or "")
        if url and _FEEDISH_PATH.search(urlsplit(url).path):
            title = _text(anchor.get_text(" ")) or _text(_attr(anchor, "title"))
            add(DiscoveredFeed(url, title, None, "anchor"))

    if not found:
        # The page's own site, not a <base href> that may point at a CDN.
        site = urlsplit(base_url)
        if site.scheme in ("http", "https") and site.netloc:
            for path in COMMON_FEED_PATHS:
                add(
                    DiscoveredFeed(
                        urlunsplit((site.scheme, site.netloc, path, "", "")), None, None, "guess"
                    )
                )
    return found


def feed_candidates(html: bytes, *, base_url: str) -> list[str]:
    """The URLs a poll should try for a page's feed: at most :data:`MAX_CANDIDATES`.

    Args:
        html: the page's bytes.
        base_url: the page's final URL.

    Returns:
        The best :func:`discover_feeds` results (links, anchors, else guesses).
    """
    return [f.url for f in discover_feeds(html, base_url=base_url)[:MAX_CANDIDATES]]
