"""Publishing: topic feeds (Atom, RSS 2.0, JSON Feed), archives, OPML and HTML pages.

Rendering is a pure function of its inputs (:mod:`.render`): the same
stories render byte-identical documents (no build timestamps anywhere), so
ETags stay put and unchanged feeds answer 304. :mod:`.export` is the only
I/O: the static export (with a gzip copy beside each file) that the daemon
serves and any web server (see ``config/nginx-aggregator.conf``) can too;
:mod:`.incremental` keeps it up to date rendering only what changed.

The renderers (feedgen, lxml, Jinja2) load on first use: importing this
package for its value types costs none of them.

URL layout, the same for the server and the export::

    /                                   index.html
    /topics.opml                        topics.opml
    /topics/<name>                      topics/<name>/index.html
    /topics/<name>.atom|.rss|.json      topics/<name>.atom ...
    /topics/<name>/archive/<n>.atom     topics/<name>/archive/<n>.atom   (1 = oldest)
    /private/<token>/topics/<name>...   private/<token>/topics/<name>...  (private topics)

Private topics render one copy per token under ``private/<token>/`` (their
self links carry the token so a reader can follow them); the server also
answers the public path with HTTP Basic auth (password = token) by serving
that copy. Private topics never appear in the index or the OPML, and their
feeds never name the WebSub hub (a hub must not learn a token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator._lazy import load
from aggregator.publish._base import (
    ATOM_TYPE,
    HTML_TYPE,
    JSON_FEED_TYPE,
    OPML_TYPE,
    RSS_TYPE,
    Document,
    Site,
    TopicFeed,
    TopicSummary,
)
from aggregator.publish.export import MANIFEST_NAME, WriteReport, file_name, write_tree
from aggregator.publish.paths import INDEX_PATH, OPML_PATH, private_prefix

if TYPE_CHECKING:
    from aggregator.publish.html import render_status_page
    from aggregator.publish.render import (
        render_archive_page,
        render_head,
        render_site,
        render_site_pages,
        render_topic,
        render_topic_isolated,
    )

__all__ = [
    "ATOM_TYPE",
    "HTML_TYPE",
    "INDEX_PATH",
    "JSON_FEED_TYPE",
    "MANIFEST_NAME",
    "OPML_PATH",
    "OPML_TYPE",
    "RSS_TYPE",
    "Document",
    "Site",
    "TopicFeed",
    "TopicSummary",
    "WriteReport",
    "file_name",
    "private_prefix",
    "render_archive_page",
    "render_head",
    "render_site",
    "render_site_pages",
    "render_status_page",
    "render_topic",
    "render_topic_isolated",
    "write_tree",
]

#: names loaded on first use, and the module each lives in
_LAZY = {
    "render_archive_page": "aggregator.publish.render",
    "render_head": "aggregator.publish.render",
    "render_site": "aggregator.publish.render",
    "render_site_pages": "aggregator.publish.render",
    "render_topic": "aggregator.publish.render",
    "render_topic_isolated": "aggregator.publish.render",
    "render_status_page": "aggregator.publish.html",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _LAZY, globals(), name)
