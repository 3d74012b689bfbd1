"""Markdown (with YAML front matter) and HTML news articles.

Markdown: front matter wins over anything guessed from the text; the body is
rendered with markdown-it-py; the heuristics of :mod:`.seedtext` fill the
gaps (a leading ``# Title``, a dateline, a "Read more:" tail, a date line).

HTML: metadata (``og:title``/``h1``/``<title>``, ``article:published_time``/
``<time>``/JSON-LD, author, canonical link) is read with lxml, because it must
be exact (trafilatura keeps only the day of a timestamp and falls back to
today's date on its own clock). The main text: when the page marks its
article (``<article>``, ``<main>``, ``itemprop=articleBody``) we take that
element and drop nav/aside/forms/share/related/comment blocks ourselves; on
our fixtures this matched trafilatura and, on a page with a sidebar, was
cleaner. Pages without such markup go to trafilatura, whose scoring of
unstructured layouts is maintained and benchmarked on real sites; the
"densest block of <p>" heuristic is the last resort when it declines. Either
way the result is post-processed with lxml: event handlers, scripts and forms
removed, relative URLs resolved against the canonical link or dropped.

Content is not sanitised here: :mod:`aggregator.normalise` (nh3) is the gate.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]  # lxml ships no stubs
from lxml import etree

from aggregator.model import Dateline, RawEntry, Related, not_in_future
from aggregator.parse.htmlmeta import (
    _html_meta,
    clean_url,
)
from aggregator.parse.seedtext import (
    extract_related,
    normalise_line,
    parse_date,
    parse_text_article,
    split_dateline,
    summarise,
)
from aggregator.text.selector import select_html

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = [
    "MAX_MARKDOWN_CHARS",
    "FrontMatterError",
    "clean_url",
    "extract_article",
    "parse_html_article",
    "parse_markdown_article",
]

# trafilatura logs at WARNING for pages it cannot extract; we report that ourselves.
# (Set before it is imported: the import is deferred to the first HTML page.)
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "iframe",
    "form",
    "input",
    "button",
    "select",
    "textarea",
    "nav",
    "header",
    "footer",
    "aside",
    "svg",
    "canvas",
    "template",
    "object",
    "embed",
)
_NOISE_CLASS = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|social|related|comments?|newsletter|promo|advert|ads?|"
    r"byline|breadcrumbs?|subscribe|signup|cookie|popup|modal|sidebar|tags|meta|author-bio)"
    r"(?:$|[\s_-])",
    re.I,
)


class FrontMatterError(ValueError):
    """The YAML front matter does not parse; ``str()`` says where."""


# ------------------------------------------------------------------- Markdown


#: Longest Markdown body rendered (characters). markdown-it costs about 4.5 s
#: and 200 MB per MB of hostile input ("[a](" or "*a " repeated: a 9.7 MB seed
#: took 99 s and 2.7 GB); an article is tens of kilobytes.
MAX_MARKDOWN_CHARS = 512 * 1024


def _markdown() -> MarkdownIt:
    # Imported here: a parse worker that never reads a Markdown seed never loads
    # markdown-it (1.5 MiB, 73 modules).
    from markdown_it import MarkdownIt

    # Raw HTML is allowed (authors embed <figure>); nh3 in normalise sanitises.
    return MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"\s*[,;]\s*", value) if v.strip()]
    if isinstance(value, list | tuple):
        out: list[str] = []
        for v in value:
            if isinstance(v, dict):
                name = v.get("name") or v.get("title")
                if name:
                    out.append(str(name).strip())
            elif v is not None and str(v).strip():
                out.append(str(v).strip())
        return out
    if isinstance(value, dict):
        name = value.get("name")
        return [str(name).strip()] if name else []
    return [str(value).strip()]


def _fm_date(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if hasattr(value, "isoformat") and hasattr(value, "year"):  # a YAML date
        return datetime(value.year, value.month, value.day, tzinfo=UTC)  # type: ignore[attr-defined]
    if isinstance(value, str):
        return parse_date(value)
    return None


def _fm_dateline(meta: Mapping[str, Any]) -> Dateline | None:
    value = meta.get("dateline")
    if isinstance(value, str) and value.strip():
        dateline, _, _ = split_dateline(value.strip().rstrip(":-–— ") + ": x")
        return dateline or Dateline(place=value.strip().rstrip(":-–— "))
    if isinstance(value, dict) and value.get("place"):
        agency = value.get("agency")
        return Dateline(place=str(value["place"]), agency=str(agency) if agency else None)
    return None


def _fm_related(value: object) -> list[Related]:
    out: list[Related] = []
    if isinstance(value, list):
        for v in value:
            if isinstance(v, str) and v.strip():
                out.append(Related(title=v.strip()))
            elif isinstance(v, dict) and v.get("title"):
                link = v.get("link") or v.get("url")
                out.append(Related(title=str(v["title"]).strip(), link=str(link) if link else None))
    return out


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split YAML front matter (``---`` ... ``---``) from a Markdown document.

    Args:
        text: the decoded document.

    Returns:
        ``(front matter mapping, body)``; an empty mapping when there is none.

    Raises:
        FrontMatterError: the front matter is not valid YAML or not a mapping.
    """
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    import yaml  # only for seeds with front matter: not in every parse worker

    try:
        # libyaml's safe loader when available: front matter is parsed per seed.
        meta = yaml.load(m.group("yaml"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise FrontMatterError(f"front matter{where}: {problem}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FrontMatterError("front matter is not a mapping of keys to values")
    return {str(k).lower(): v for k, v in meta.items()}, text[m.end() :]


def parse_markdown_article(
    text: str,
    *,
    relpath: str,
    identity: str,
    mtime: datetime,
    now: datetime,
) -> tuple[RawEntry, tuple[str, ...]]:
    """Read a Markdown article with optional YAML front matter.

    Front matter keys: ``title``, ``date``/``published``, ``updated``/
    ``modified``, ``author``/``authors``, ``tags``/``categories``/``keywords``,
    ``link``/``url``/``canonical``, ``summary``/``description``,
    ``language``/``lang``, ``dateline`` and ``related``.

    Args:
        text: the decoded document.
        relpath: path relative to the seeds folder (messages, fallback title).
        identity: the entry identity.
        mtime: the file's modification time (date of last resort).
        now: the current time; no date may be later.

    Returns:
        The entry and one-line warnings.

    Raises:
        FrontMatterError: the front matter is invalid.
        ValueError: there is no usable content.
    """
    meta, body = split_front_matter(text)
    warnings: list[str] = []
    if len(body) > MAX_MARKDOWN_CHARS:
        warnings.append(f"Markdown body is {len(body):,} characters, cut to {MAX_MARKDOWN_CHARS:,}")
        body = body[:MAX_MARKDOWN_CHARS]
    lines = body.split("\n")

    # The heuristics of plain text find what front matter leaves out: a
    # leading "# Title", a dateline, "By" and "Published:" lines, related.
    heuristic, heuristic_warnings = (
        parse_text_article(body, relpath=relpath, identity=identity, mtime=mtime, now=now)
        if body.strip()
        else (None, ())
    )
    warnings.extend(heuristic_warnings)

    content_html, dateline, related_md = _markdown_content(lines, meta, heuristic)
    title = _scalar(meta.get("title")) or (heuristic.title if heuristic else None)
    link = clean_url(_scalar(meta.get("link") or meta.get("url") or meta.get("canonical")))
    published, updated, date_is_guess = _markdown_dates(meta, heuristic, mtime, now, warnings)
    authors = _as_list(meta.get("authors") or meta.get("author")) or list(
        heuristic.authors if heuristic else ()
    )
    tags = _as_list(meta.get("tags") or meta.get("categories") or meta.get("keywords")) or list(
        heuristic.tags if heuristic else ()
    )
    related = (
        _fm_related(meta.get("related"))
        or related_md
        or list(heuristic.related if heuristic else ())
    )
    summary = _scalar(meta.get("summary") or meta.get("description") or meta.get("excerpt"))
    if summary is None:
        # From the rendered lead, as for an HTML article: the heuristics read
        # the Markdown source, whose summary would show its `**` and `_`.
        lead = _first_paragraph_text(content_html) if content_html else ""
        summary = summarise(lead) if lead else (heuristic.summary if heuristic else None)
    if not title and not content_html:
        raise ValueError("no usable content (no title and an empty body)")
    language = _scalar(meta.get("language") or meta.get("lang"))
    entry = RawEntry(
        identity=identity,
        title=title,
        link=link or (heuristic.link if heuristic else None),
        content=_absolutise(content_html, link) if content_html else None,
        content_is_html=True,
        summary=summary,
        summary_is_html=False,
        published=published,
        updated=updated,
        authors=tuple(authors),
        tags=tuple(tags),
        language=language,
        dateline=dateline,
        related=tuple(related),
        base_url=link,
        date_is_guess=date_is_guess,
    )
    return entry, tuple(warnings)


def _markdown_content(
    lines: list[str], meta: dict[str, Any], heuristic: RawEntry | None
) -> tuple[str, Dateline | None, list[Related]]:
    """The body as HTML, without what the heuristics took out; the dateline; related links."""
    lines = _strip_leading_title(lines)
    lines, related_md = _markdown_related(lines)
    rendered_source = "\n".join(lines)
    dateline = _fm_dateline(meta)
    if heuristic is not None and heuristic.dateline is not None:
        dateline = dateline or heuristic.dateline
        rendered_source = _strip_dateline_md(rendered_source)
    rendered_source = _strip_meta_lines(rendered_source)
    return _markdown().render(rendered_source).strip(), dateline, related_md


def _markdown_dates(
    meta: dict[str, Any],
    heuristic: RawEntry | None,
    mtime: datetime,
    now: datetime,
    warnings: list[str],
) -> tuple[datetime, datetime | None, bool]:
    """Published, updated, and whether the date is a guess: front matter, text, then mtime."""
    claimed = _fm_date(meta.get("date") or meta.get("published") or meta.get("pubdate"))
    published = not_in_future(claimed, now)
    if claimed is not None and published is None:
        warnings.append(f"front matter date {claimed.isoformat()} is in the future; ignored")
    updated = not_in_future(
        _fm_date(meta.get("updated") or meta.get("modified") or meta.get("lastmod")), now
    )
    date_is_guess = False
    if published is None and heuristic is not None:
        published, date_is_guess = heuristic.published, heuristic.date_is_guess
        updated = updated or heuristic.updated
    if published is None:
        published, date_is_guess = min(mtime, now), True
    return published, updated, date_is_guess


def _scalar(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _strip_leading_title(lines: list[str]) -> list[str]:
    """Drop a leading ``# Title`` (or setext title): it is the entry's title."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and re.match(r"^#\s+\S", lines[i]):
        return lines[i + 1 :]
    if i + 1 < len(lines) and re.match(r"^=+\s*$", lines[i + 1]) and lines[i].strip():
        return lines[i + 2 :]
    return lines


def _markdown_related(lines: list[str]) -> tuple[list[str], list[Related]]:
    """A trailing "## Related" / "Read more:" section becomes related items."""
    heading = re.compile(
        r"^(?:#{1,6}\s*|\*\*)?(?:read more|related(?: stories| articles)?|see also|more on this)"
        r"\s*:?(?:\*\*)?\s*:?\s*$",
        re.I,
    )
    for i, line in enumerate(lines):
        if heading.match(line.strip()):
            tail = [normalise_line(t) for t in lines[i + 1 :]]
            _, related = extract_related(["Read more:", *tail])
            return lines[:i], related
    return lines, []


def _strip_dateline_md(source: str) -> str:
    """Remove the dateline prefix from the first paragraph of Markdown source."""
    blocks = source.split("\n\n")
    for i, block in enumerate(blocks):
        stripped = block.strip()
        if not stripped or stripped.startswith(("#", "---", "By ", "Published", "Tags")):
            continue
        dateline, rest, _ = split_dateline(normalise_line(stripped.replace("\n", " ")))
        if dateline is not None:
            blocks[i] = rest
        break
    return "\n\n".join(blocks)


def _strip_meta_lines(source: str) -> str:
    pattern = re.compile(
        r"^(?:By [A-Z][^.\n]{1,60}|(?:Published|Posted|Updated|Tags|Keywords)\s*:.*)$", re.M
    )
    return pattern.sub("", source)


# ------------------------------------------------------------------------ HTML

_SEMANTIC = ("//*[@itemprop='articleBody']", "//article", "//main", "//*[@role='main']")


def _semantic_root(doc: Any) -> Any:
    for xpath in _SEMANTIC:
        found = doc.xpath(xpath)
        if found:
            return found[0]
    return None


def _handwritten_main(doc: Any) -> str | None:
    """Our extractor: the marked article element, or the densest block of <p>."""
    root = _semantic_root(doc)
    if root is None:
        best, best_len = None, 0
        for parent in doc.xpath("//body//*[p]"):
            length = sum(len(p.text_content()) for p in parent.findall("p"))
            if length > best_len:
                best, best_len = parent, length
        root = best
    if root is None:
        return None
    root = _clone(root)
    _strip_noise(root)
    parts = [
        etree.tostring(el, encoding="unicode", method="html").strip()
        for el in root.xpath(
            "./p | ./h2 | ./h3 | ./h4 | ./ul | ./ol | ./blockquote | ./figure | ./*/p"
        )
        if normalise_line(el.text_content()) or el.xpath(".//img")
    ]
    return "\n".join(parts) or None


def _strip_noise(root: Any) -> None:
    """Drop navigation, forms, scripts, share/related/comment blocks and the h1 under ``root``."""
    for el in root.xpath(".//*"):
        if el.getparent() is None:
            continue  # inside a block dropped already
        cls = f"{el.get('class', '')} {el.get('id', '')}"
        if el.tag in _DROP_TAGS or el.tag == "h1" or (cls.strip() and _NOISE_CLASS.search(cls)):
            el.drop_tree()


def _clone(el: Any) -> Any:
    return lxml.html.fromstring(etree.tostring(el, encoding="unicode", method="html"))


def _library_main(text: str, url: str | None) -> str | None:
    # Imported here: it takes ~0.4 s and only HTML pages without article markup need it.
    import trafilatura

    result = trafilatura.extract(
        text,
        url=url,
        output_format="html",
        include_links=True,
        include_images=True,
        include_tables=True,
        include_comments=False,
        favor_precision=True,
        with_metadata=False,
    )
    if not result:
        return None
    body = lxml.html.fromstring(result)
    found = body.xpath("//body")
    container = found[0] if found else body
    return (
        "\n".join(etree.tostring(el, encoding="unicode", method="html").strip() for el in container)
        or None
    )


def _read_html(text: str) -> tuple[str, Any]:
    """The text without an XML declaration (lxml refuses it in str input), and its tree.

    Raises:
        ValueError: the text is not readable HTML.
    """
    text = re.sub(r"\A\s*<\?xml[^>]*\?>", "", text)
    try:
        return text, lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"not readable HTML: {exc}") from exc


def _main_html(doc: Any, text: str, url: str | None) -> str | None:
    """The article's main text: marked-up article first, then trafilatura, then dense <p>."""
    main = _handwritten_main(doc) if _semantic_root(doc) is not None else None
    if main is None:
        main = _library_main(text, url)
    if main is None:
        main = _handwritten_main(doc)
    return main


def _selected_html(text: str, selector: str) -> str | None:
    """What ``selector`` picks from the page, without the blocks no article carries."""
    parts = select_html(text, selector)
    if not parts:
        return None
    wrapper = lxml.html.fragment_fromstring("".join(parts), create_parent="div")
    _strip_noise(wrapper)
    out = "".join(etree.tostring(el, encoding="unicode", method="html") for el in wrapper)
    return out.strip() if normalise_line(wrapper.text_content()) else None


def _page_base(doc: Any, url: str) -> str:
    """The base of a page's relative links: its ``<base href>`` (if http(s)), else its URL."""
    for href in doc.xpath("//base/@href")[:1]:
        base = urljoin(url, str(href).strip())
        if urlsplit(base).scheme in ("http", "https"):
            return base
    return url


def extract_article(text: str, *, url: str, selector: str | None = None) -> str | None:
    """The article body of a fetched web page, for ``full_content`` sources.

    The same extraction as :func:`parse_html_article` (the marked article
    element, else trafilatura, else the densest block of paragraphs), or,
    with ``selector``, the elements that CSS selector matches. Either way
    navigation, forms, scripts, share/related/comment blocks and the page's
    h1 are dropped, and relative links and images are made absolute against
    the page's base. Not sanitised: :func:`aggregator.normalise.sanitize_html`
    is the gate.

    Args:
        text: the decoded page.
        url: the page's final URL (after redirects).
        selector: a CSS selector that overrides the extractor.

    Returns:
        The body as an HTML fragment, or None when the page has no article text.

    Raises:
        ValueError: the page is not readable HTML, or the selector is invalid.
    """
    text, doc = _read_html(text)
    main = _selected_html(text, selector) if selector else _main_html(doc, text, url)
    if not main:
        return None
    return _absolutise(main, _page_base(doc, url)) or None


def _absolutise(fragment: str, base: str | None) -> str:
    """Resolve relative URLs against ``base``; drop them when there is none.

    Also strips event-handler attributes and ``javascript:`` URLs so that a
    page's scripts never travel with its text (nh3 is still the final gate).
    """
    if not fragment.strip():
        return fragment
    wrapper = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for el in wrapper.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in list(el.attrib):
            if attr.lower().startswith("on"):
                del el.attrib[attr]
        for attr in ("href", "src"):
            value = el.get(attr)
            if value is None:
                continue
            value = value.strip()
            if re.match(r"^\s*(?:javascript|vbscript|data):", value, re.I):
                del el.attrib[attr]
                continue
            if value.startswith("#"):
                continue
            absolute = urljoin(base, value) if base else value
            if urlsplit(absolute).scheme in ("http", "https", "mailto"):
                el.set(attr, absolute)
            else:
                del el.attrib[attr]  # relative with nothing to resolve against
        if el.tag == "img" and el.get("src") is None:
            el.drop_tree()
    out = (wrapper.text or "") + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in wrapper
    )
    return out.strip()


def parse_html_article(
    text: str,
    *,
    relpath: str,
    identity: str,
    mtime: datetime,
    now: datetime,
) -> tuple[RawEntry, tuple[str, ...]]:
    """Read an HTML news article: metadata with lxml, main text with trafilatura.

    Args:
        text: the decoded document.
        relpath: path relative to the seeds folder (messages).
        identity: the entry identity.
        mtime: the file's modification time (date of last resort).
        now: the current time; no date may be later.

    Returns:
        The entry and one-line warnings.

    Raises:
        ValueError: the document has no usable content.
    """
    warnings: list[str] = []
    text, doc = _read_html(text)
    meta = _html_meta(doc)
    main = _main_html(doc, text, meta.link)
    content = _absolutise(main, meta.link) if main else ""
    content, dateline = _drop_title_and_dateline(content, meta.title)
    if not meta.title and not content:
        raise ValueError("no usable content (no title and no article text)")

    published, date_is_guess = not_in_future(meta.published, now), False
    if meta.published is not None and published is None:
        warnings.append(f"date {meta.published.isoformat()} is in the future; ignored")
    if published is None:
        published, date_is_guess = min(mtime, now), True
    updated = not_in_future(meta.updated, now)
    plain = _first_paragraph_text(content)
    summary = meta.description or (summarise(plain) if plain else None)
    entry = RawEntry(
        identity=identity,
        title=meta.title,
        link=meta.link,
        content=content or None,
        content_is_html=True,
        summary=summary,
        summary_is_html=False,
        published=published,
        updated=updated,
        authors=meta.authors,
        tags=meta.tags,
        language=meta.language,
        dateline=dateline,
        base_url=meta.link,
        date_is_guess=date_is_guess,
    )
    return entry, tuple(warnings)


def _drop_title_and_dateline(content: str, title: str | None) -> tuple[str, Dateline | None]:
    """Remove a leading heading that repeats the title; split a dateline off."""
    if not content:
        return content, None
    wrapper = lxml.html.fragment_fromstring(content, create_parent="div")
    children = list(wrapper)
    if (
        children
        and children[0].tag in ("h1", "h2")
        and title
        and normalise_line(children[0].text_content()).lower() == title.lower()
    ):
        wrapper.remove(children[0])
    dateline = None
    first_p = wrapper.find("p")
    if first_p is not None and first_p.text:
        dateline, rest, _ = split_dateline(normalise_line(first_p.text))
        if dateline is not None:
            # Keep the space before an inline element that follows the text.
            trailing = " " if first_p.text[-1:].isspace() and len(first_p) else ""
            first_p.text = rest + trailing
    out = "".join(etree.tostring(c, encoding="unicode", method="html") for c in wrapper)
    return out.strip(), dateline


def _first_paragraph_text(content: str) -> str | None:
    if not content:
        return None
    wrapper = lxml.html.fragment_fromstring(content, create_parent="div")
    for p in wrapper.iter("p"):
        text = normalise_line(p.text_content())
        if text:
            return text
    return None
