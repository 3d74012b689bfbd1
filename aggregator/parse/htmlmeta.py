"""A web page's metadata: its title, dates, authors, canonical link, language and tags from
Open Graph and other meta tags, JSON-LD, ``<time>`` and bylines; URLs without tracking parameters.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from aggregator.parse.datelines import parse_date
from aggregator.parse.seedtext import normalise_line

__all__ = ["clean_url"]


_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_ga|_gl|yclid|ocid|"
    r"cmpid|ncid|sr_share|smid|spm)$",
    re.I,
)
_SITE_SUFFIX = re.compile(r"\s+(?:\||-|–|—|::|·|»)\s+[^|–—·»]{2,60}$")


def clean_url(url: str | None, base: str | None = None) -> str | None:
    """Resolve ``url`` against ``base`` and drop tracking query parameters.

    Args:
        url: an absolute or relative URL.
        base: base for a relative URL.

    Returns:
        An absolute http(s) URL without ``utm_*``/``fbclid``-style parameters
        or fragment, or None when it cannot be made absolute.
    """
    if not url:
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    ]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


@dataclass(frozen=True, slots=True)
class _HtmlMeta:
    title: str | None
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...]
    link: str | None
    language: str | None
    description: str | None
    tags: tuple[str, ...]


def _meta_content(doc: Any, *names: str) -> str | None:
    for name in names:
        for attr in ("property", "name", "itemprop"):
            found = doc.xpath(f"//meta[@{attr}=$n]/@content", n=name)
            for value in found:
                if str(value).strip():
                    return normalise_line(str(value))
    return None


def _json_ld(doc: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for script in doc.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(str(script))
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                if "@graph" in item and isinstance(item["@graph"], list):
                    stack.extend(item["@graph"])
                out.append(item)
    return [
        d
        for d in out
        if "Article" in str(d.get("@type", "")) or "Posting" in str(d.get("@type", ""))
    ]


def _html_meta(doc: Any) -> _HtmlMeta:
    ld = _json_ld(doc)
    ld0 = ld[0] if ld else {}
    return _HtmlMeta(
        title=_html_title(doc, ld0),
        published=_html_published(doc, ld0),
        updated=_html_updated(doc, ld0),
        authors=_html_authors(doc, ld0),
        link=_html_canonical(doc),
        language=_html_language(doc),
        description=_meta_content(doc, "og:description", "description", "twitter:description"),
        tags=_html_tags(doc),
    )


def _html_title(doc: Any, ld0: dict[str, Any]) -> str | None:
    """The page's title: Open Graph, its first <h1>, JSON-LD's headline, <title>; no site suffix."""
    title = _meta_content(doc, "og:title", "twitter:title")
    if not title:
        h1 = doc.xpath("//h1")
        if h1:
            title = normalise_line(h1[0].text_content()) or None
    if not title and isinstance(ld0.get("headline"), str):
        title = normalise_line(ld0["headline"])
    if not title:
        titles = doc.xpath("//title")
        if titles:
            title = normalise_line(titles[0].text_content()) or None
    if title:
        title = _SITE_SUFFIX.sub("", title).strip() or title
    return title


def _html_published(doc: Any, ld0: dict[str, Any]) -> datetime | None:
    """The first publication date that parses: meta tags, JSON-LD, then the first <time>."""
    candidates = [
        _meta_content(
            doc,
            "article:published_time",
            "og:published_time",
            "datePublished",
            "pubdate",
            "publishdate",
            "date",
            "dc.date",
            "DC.date.issued",
            "parsely-pub-date",
            "sailthru.date",
        ),
        ld0.get("datePublished") if isinstance(ld0.get("datePublished"), str) else None,
        *[str(v) for v in doc.xpath("//time[@datetime]/@datetime")[:1]],
        *[normalise_line(t.text_content()) for t in doc.xpath("//time")[:1]],
    ]
    for candidate in candidates:
        if candidate:
            published = parse_date(candidate)
            if published is not None:
                return published
    return None


def _html_updated(doc: Any, ld0: dict[str, Any]) -> datetime | None:
    modified = _meta_content(doc, "article:modified_time", "og:updated_time", "dateModified")
    if not modified and isinstance(ld0.get("dateModified"), str):
        modified = ld0["dateModified"]
    return parse_date(modified) if modified else None


def _html_authors(doc: Any, ld0: dict[str, Any]) -> tuple[str, ...]:
    """Authors from meta tags and JSON-LD, else the first byline's name."""
    authors: list[str] = []
    author = _meta_content(doc, "author", "article:author", "dc.creator", "parsely-author")
    if author and not author.startswith("http"):
        authors.append(author)
    ld_author = ld0.get("author")
    for a in ld_author if isinstance(ld_author, list) else [ld_author]:
        name = a.get("name") if isinstance(a, dict) else a if isinstance(a, str) else None
        if isinstance(name, str) and name.strip() and name.strip() not in authors:
            authors.append(name.strip())
    if not authors:
        for node in doc.xpath("//*[@rel='author'] | //*[contains(@class,'byline')]")[:1]:
            text = re.sub(r"^\s*by\s+", "", normalise_line(node.text_content()), flags=re.I)
            text = re.split(r"\s*[·|•,]\s*|\s+-\s+|\s+on\s+", text)[0].strip()
            if text and len(text.split()) <= 6:
                authors.append(text)
    return tuple(authors)


def _html_canonical(doc: Any) -> str | None:
    for href in doc.xpath("//link[@rel='canonical']/@href"):
        canonical = clean_url(str(href))
        if canonical:
            return canonical
    return clean_url(_meta_content(doc, "og:url"))


def _html_language(doc: Any) -> str | None:
    langs = doc.xpath("/html/@lang")
    if langs and str(langs[0]).strip():
        return str(langs[0]).strip()
    return _meta_content(doc, "og:locale", "language", "content-language")


def _html_tags(doc: Any) -> tuple[str, ...]:
    keywords = _meta_content(doc, "keywords", "news_keywords")
    tags = tuple(t.strip() for t in (keywords or "").split(",") if t.strip())
    return tags or tuple(
        normalise_line(str(t)) for t in doc.xpath("//meta[@property='article:tag']/@content")
    )
