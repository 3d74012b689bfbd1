"""Atom 1.0 documents (RFC 4287) with RFC 5005 archives; the only module importing feedgen.

feedgen builds the standard elements; lxml then adds what feedgen cannot
express: ``type="text"`` on titles, ``atom:source``, ``xml:lang`` per entry and
the RFC 5005 ``fh:archive`` marker.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from feedgen.feed import FeedGenerator
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from aggregator.model import Origin, Story
from aggregator.publish._base import (
    ATOM_TYPE,
    Document,
    Page,
    Site,
    TopicUrls,
    body_html,
    feed_identifier,
    make_document,
    newest_updated,
    via_links,
    web_url,
    xml_safe,
)
from aggregator.text.tags import language_tag

__all__ = ["FH_NS", "render_atom"]

ATOM_NS = "http://www.w3.org/2005/Atom"
#: RFC 5005 feed history namespace
FH_NS = "http://purl.org/syndication/history/1.0"
_A = "{" + ATOM_NS + "}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _via_links(story: Story) -> Iterator[Origin]:
    """Provenance origins with a link, each link once, in provenance order."""
    seen: set[str] = set()
    for origin in story.provenance:
        link = web_url(origin.link)
        if link and link not in seen:
            seen.add(link)
            yield origin


def _add_entry(fg: FeedGenerator, story: Story) -> None:
    item = story.item
    fe = fg.add_entry(order="append")
    fe.id(story.id)
    fe.title(xml_safe(item.title))
    fe.updated(story.updated)
    fe.published(story.published)
    for author in item.authors:
        if author.strip():
            fe.author({"name": xml_safe(author)})
    if web_url(item.link):
        # Only for feedgen's own content-or-alternate check: feedgen 1.0 drops
        # rel/type/title from entry links, so _finish rewrites every entry link.
        fe.link(href=item.link, rel="alternate")
    content = body_html(story)
    if not content and not web_url(item.link):
        # RFC 4287 4.1.1.1: an entry without an alternate link must carry content.
        content = "<p>" + xml_safe(item.title).replace("&", "&amp;").replace("<", "&lt;") + "</p>"
    if content:
        fe.content(xml_safe(content), type="html")
    if item.summary.strip():
        fe.summary(xml_safe(item.summary.strip()), type="text")
    for tag in item.tags:
        if tag.strip():
            fe.category(term=xml_safe(tag))


def _add_links(entry: etree._Element, story: Story, urls: TopicUrls) -> None:
    for old in entry.findall(_A + "link"):
        entry.remove(old)
    etree.SubElement(
        entry, _A + "link", rel="alternate", type="text/html", href=urls.story_url(story)
    )
    for related in story.item.related:
        if web_url(related.link):
            etree.SubElement(
                entry, _A + "link", rel="related", href=related.link, title=xml_safe(related.title)
            )
    if story.via:
        # One rel="via" per merged entry: its canonical link.
        titles = {v.link: v.title or v.source for v in story.via if v.link}
        for link in via_links(story):
            etree.SubElement(entry, _A + "link", rel="via", href=link, title=xml_safe(titles[link]))
        return
    for origin in _via_links(story):
        title = xml_safe(origin.title or origin.source)
        etree.SubElement(entry, _A + "link", rel="via", href=origin.link or "", title=title)


def _source_element(origin: Origin) -> etree._Element:
    source = etree.Element(_A + "source")
    feed_id = feed_identifier(origin.feed_id)
    if feed_id:
        etree.SubElement(source, _A + "id").text = feed_id
    title = etree.SubElement(source, _A + "title", type="text")
    title.text = xml_safe(origin.title or origin.source)
    link = web_url(origin.link)
    if link:
        etree.SubElement(source, _A + "link", rel="alternate", href=link)
    return source


def render_atom(
    site: Site, topic_title: str, subtitle: str, urls: TopicUrls, page: Page, *, public: bool = True
) -> Document:
    """Render one Atom document: the topic's subscription feed or one archive page.

    Args:
        site: site-wide facts (base URL, author, hub, language).
        topic_title: the feed title.
        subtitle: the feed subtitle (may be empty).
        urls: where this rendering lives (public or under a private token).
        page: the stories of this document, newest first, and its archive number.
        public: False for private renderings: no hub link (a hub must never learn a token).

    Returns:
        The document at ``urls.atom_path`` (page 0) or ``urls.archive_path(n)``.
    """
    path = urls.archive_path(page.number) if page.is_archive else urls.atom_path
    fg = FeedGenerator()
    fg.id(urls.feed_id)
    fg.title(xml_safe(topic_title))
    if subtitle.strip():
        fg.subtitle(xml_safe(subtitle.strip()))
    updated = newest_updated(page.stories)
    fg.updated(updated)
    author = {"name": xml_safe(site.author_name)}
    if site.author_email:
        author["email"] = site.author_email
    fg.author(author)
    fg.generator("aggregator")
    if site.language:
        fg.language(site.language)
    fg.link(href=urls.url(path), rel="self", type="application/atom+xml")
    fg.link(href=urls.url(urls.html_path), rel="alternate", type="text/html")
    if page.is_archive:
        fg.link(href=urls.url(urls.atom_path), rel="current", type="application/atom+xml")
        if page.number > 1:
            fg.link(
                href=urls.url(urls.archive_path(page.number - 1)),
                rel="prev-archive",
                type="application/atom+xml",
            )
        if page.number < page.archive_count:
            fg.link(
                href=urls.url(urls.archive_path(page.number + 1)),
                rel="next-archive",
                type="application/atom+xml",
            )
    else:
        if page.archive_count:
            fg.link(
                href=urls.url(urls.archive_path(page.archive_count)),
                rel="prev-archive",
                type="application/atom+xml",
            )
        if site.hub and public:
            fg.link(href=site.hub, rel="hub")
    for story in page.stories:
        _add_entry(fg, story)
    return make_document(
        path, _finish(fg, page.stories, urls, archive=page.is_archive), ATOM_TYPE, updated
    )


def _finish(
    fg: FeedGenerator, stories: Sequence[Story], urls: TopicUrls, *, archive: bool
) -> bytes:
    """Add what feedgen cannot express and serialise deterministically."""
    root = etree.fromstring(fg.atom_str(pretty=False))
    first_entry: etree._Element | None = root.find(_A + "entry")
    for title in (root.find(_A + "title"), root.find(_A + "subtitle")):
        if title is not None:
            title.set("type", "text")
    if archive:
        marker = etree.Element("{" + FH_NS + "}archive", nsmap={"fh": FH_NS})
        if first_entry is not None:
            first_entry.addprevious(marker)
        else:
            root.append(marker)
    for element, story in zip(root.iterfind(_A + "entry"), stories, strict=True):
        element.find(_A + "title").set("type", "text")
        language = language_tag(story.item.language)
        if language:
            element.set(_XML_LANG, language)
        _add_links(element, story, urls)
        origin = story.item.origin or (story.provenance[0] if story.provenance else None)
        if origin is not None:
            element.append(_source_element(origin))
    # One namespace declaration on the root instead of one per fh element.
    etree.cleanup_namespaces(root, top_nsmap={"fh": FH_NS} if archive else None)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
