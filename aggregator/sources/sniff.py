"""Is this body an HTML page or a feed? A look at its first bytes (no parser imported).

Kept apart from :mod:`aggregator.sources.discover` (which imports
beautifulsoup4) so that a poll whose body is a feed never loads bs4.
"""

from __future__ import annotations

import re

__all__ = ["looks_like_html"]

_FEED_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)\b", re.S
)
_HTML_START = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """Tell an HTML page from a feed, by content first and the header second.

    Servers label feeds ``text/html`` and pages ``text/xml`` often enough that
    the body decides when it is clear: an XML document rooted in ``rss``,
    ``feed`` or ``rdf:RDF``, or a JSON document, is not HTML; a doctype or
    ``<html>`` tag near the start is.

    Args:
        body: the response body (only the first 2 KB are examined).
        content_type: the ``Content-Type`` header, if any.

    Returns:
        True when the body should go to :func:`discover_feeds`.
    """
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if _FEED_START.match(head) or head[:1] in (b"{", b"["):
        return False
    if _HTML_START.search(head):
        return True
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime in ("text/html", "application/xhtml+xml")
