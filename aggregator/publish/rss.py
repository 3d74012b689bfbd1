"""RSS 2.0 documents: the same entries and ids as the Atom feed.

Written by hand with escaping (no XML library) so output is byte-stable and
this module adds no dependency. ``guid isPermaLink="false"`` carries the story
id, so RSS readers deduplicate exactly like Atom readers.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from aggregator.model import Story
from aggregator.publish._base import (
    RSS_TYPE,
    Document,
    Page,
    Site,
    TopicUrls,
    body_html,
    http_date,
    make_document,
    newest_updated,
    web_url,
    xml_safe,
)

__all__ = ["render_rss"]


def _text(value: str) -> str:
    return escape(xml_safe(value))


def _attr(value: str) -> str:
    return quoteattr(xml_safe(value), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _item(story: Story, urls: TopicUrls) -> str:
    item = story.item
    out = ["<item>", f"<title>{_text(item.title)}</title>"]
    out.append(f"<link>{_text(urls.story_url(story))}</link>")
    description = body_html(story) or _text(item.title)
    out.append(f"<description>{_text(description)}</description>")
    out.extend(f"<dc:creator>{_text(a)}</dc:creator>" for a in item.authors if a.strip())
    out.extend(f"<category>{_text(t)}</category>" for t in item.tags if t.strip())
    out.append(f'<guid isPermaLink="false">{_text(story.id)}</guid>')
    out.append(f"<pubDate>{http_date(story.published)}</pubDate>")
    origin = item.origin or (story.provenance[0] if story.provenance else None)
    if origin is not None:
        # RSS <source url> names the source's feed; only an http(s) URL will do.
        url = web_url(origin.feed_id) or web_url(origin.link)
        if url:
            out.append(f"<source url={_attr(url)}>{_text(origin.title or origin.source)}</source>")
    out.append("</item>")
    return "".join(out)


def render_rss(
    site: Site,
    topic_title: str,
    description: str,
    urls: TopicUrls,
    page: Page,
    *,
    public: bool = True,
) -> Document:
    """Render the topic's RSS 2.0 feed.

    Args:
        site: site-wide facts.
        topic_title: channel title.
        description: channel description (the title is used when empty: RSS requires one).
        urls: where this rendering lives.
        page: the current feed (page 0): its stories, newest first.
        public: False for private renderings (no hub link).

    Returns:
        The document at ``urls.rss_path``.
    """
    stories = page.stories
    updated = newest_updated(stories)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel>",
        f"<title>{_text(topic_title)}</title>",
        f"<link>{_text(urls.url(urls.html_path))}</link>",
        f"<description>{_text(description.strip() or topic_title)}</description>",
        f'<atom:link rel="self" type="application/rss+xml" href={_attr(urls.url(urls.rss_path))}/>',
    ]
    if site.hub and public:
        out.append(f'<atom:link rel="hub" href={_attr(site.hub)}/>')
    if site.language:
        out.append(f"<language>{_text(site.language)}</language>")
    out.append(f"<lastBuildDate>{http_date(updated)}</lastBuildDate>")
    out.append("<generator>aggregator</generator>")
    out.append("<docs>https://www.rssboard.org/rss-specification</docs>")
    out.extend(_item(story, urls) for story in stories)
    out.append("</channel></rss>\n")
    return make_document(urls.rss_path, "".join(out).encode("utf-8"), RSS_TYPE, updated)
