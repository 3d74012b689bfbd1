"""OPML 2.0 list of the public topic feeds (http://opml.org/spec2.opml)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from aggregator.publish._base import (
    EPOCH,
    OPML_TYPE,
    Document,
    Site,
    TopicSummary,
    TopicUrls,
    http_date,
    make_document,
    xml_safe,
)
from aggregator.publish.paths import OPML_PATH

__all__ = ["render_opml"]


def _attr(value: str) -> str:
    return quoteattr(xml_safe(value), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def render_opml(site: Site, topics: Sequence[TopicSummary]) -> Document:
    """Render the OPML subscription list of ``topics`` (callers pass public topics only).

    Args:
        site: site-wide facts.
        topics: the public topics, in the order to list them.

    Returns:
        The document at ``topics.opml``; its date is the newest story's ``updated``.
    """
    updated = max((t.updated or EPOCH for t in topics), default=EPOCH)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<opml version="2.0">\n<head>\n',
        f"<title>{escape(xml_safe(site.title))}</title>\n",
        f"<dateModified>{http_date(updated)}</dateModified>\n",
        f"<ownerName>{escape(xml_safe(site.author_name))}</ownerName>\n",
    ]
    if site.author_email:
        out.append(f"<ownerEmail>{escape(xml_safe(site.author_email))}</ownerEmail>\n")
    out.append("</head>\n<body>\n")
    for summary in topics:
        topic = summary.topic
        urls = TopicUrls(site.base_url, topic.name, "")
        attrs = [
            f"text={_attr(topic.title)}",
            f"title={_attr(topic.title)}",
            'type="rss"',
            'version="ATOM1"',
            f"xmlUrl={_attr(urls.url(urls.atom_path))}",
            f"htmlUrl={_attr(urls.url(urls.html_path))}",
        ]
        if topic.description.strip():
            attrs.append(f"description={_attr(topic.description.strip())}")
        out.append("<outline " + " ".join(attrs) + "/>\n")
    out.append("</body>\n</opml>\n")
    return make_document(OPML_PATH, "".join(out).encode("utf-8"), OPML_TYPE, updated)
