"""What is not the article in a plain-text article: metadata lines (``By``, ``Published:``,
``Tags:``), boilerplate and breadcrumbs, and the patterns the other readers share.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from aggregator.parse.datelines import parse_date
from aggregator.text.labels import fold_key, labels

__all__ = ["Metadata"]


# ---------------------------------------------------------- metadata and noise

_META = re.compile(
    r"^(?P<key>by|author|authors|written by|reporter|reporting by|tags|tagged|keywords|topics|"
    r"categories|category|filed under|published(?: on| at)?|first published|posted(?: on| at)?|"
    r"date|dated|updated|last updated|modified|last modified|source|link|url|original|"
    r"canonical|permalink)\b\s*[:：]?\s*(?P<value>.+)$",
    re.I,
)
_BOILERPLATE = re.compile(
    r"^(?:share(?: this)?(?: article| story| page)?(?: on [\w ]+)?|advertisement|advertising|"
    r"sponsored(?: content)?|print(?: this)?(?: article)?|e-?mail(?: this)?(?: article)?|"
    r"comments?(?: \(\d+\))?|\d+ comments?|subscribe\b.*|sign up\b.*|follow us\b.*|"
    r"click here\b.*|all rights reserved\.?|©.*|copyright\b.*|\(c\) \d{4}.*|"
    r"skip to (?:main )?content|home|menu|search|back to top|listen to (?:this )?article.*|"
    r"\d+ min(?:ute)?s? read|photo\s*(?:credit)?\s*:.*|image\s*(?:credit)?\s*:.*|"
    r"getty images|file photo\b.*|caption\s*:.*|loading\.*|whatsapp|facebook|twitter|"
    r"linkedin|telegram|reddit|x|tweet|pin it|download (?:the )?app\b.*|"
    r"(?:we use )?cookies?\b.{0,80}|accept(?: all)?(?: cookies)?|continue reading\.*|"
    r"report an error|editor'?s note\s*:?)$",
    re.I,
)
_BREADCRUMB_LINE = re.compile(r"^[^.!?]{1,40}(?:\s*[>»›|/]\s*[^.!?>»›|/]{1,40}){1,6}$")
# Site and section names glued together by a scraper: "Iran PressIran News:".
_GLUED_CRUMB = re.compile(
    r"^(?P<crumb>[A-Z][\w'’.&-]*(?: [A-Z][\w'’.&-]*){0,7})\s*:\s*(?P<rest>\S.*)$", re.S
)
_GLUE = re.compile(r"[a-z]{2,}[A-Z][a-z]")
_CRUMB_SEPARATED = re.compile(
    r"^(?:home|news|world)\s*[>»›|/](?:\s*[^>»›|/.!?]{1,30}\s*[>»›|/])*\s*", re.I
)
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_BULLET = re.compile(r"^(?:[-*•·–—+]|\d{1,2}[.)])\s+")
_MD_LINK = re.compile(r"^\[(?P<title>[^\]]+)\]\((?P<url>[^)\s]+)\)")
_SETEXT = re.compile(r"^(?:={3,}|-{3,})$")
_RULE = re.compile(r"^(?:[*_=~#-]\s*){3,}$")
_ATX = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*$")
_ROLE = re.compile(
    r"\b(?:staff|writer|correspondent|reporter|editor|contributor|special to|bureau|desk|"
    r"reuters|associated press|ap|afp|agence|news agency|press|tass|ria|irna|xinhua)\b",
    re.I,
)
_SENTENCE_END = re.compile(r"""[.!?…؟։]["'”’»)\]]*$""")
_QUOTE = re.compile(r"[\"“](?P<q>[^\"“”]{12,220}?)[\"”]")
# Guillemets: Russian, Armenian, Persian and Arabic quotations.
_GUILLEMET_QUOTE = re.compile(r"«(?P<q>[^«»]{12,220}?)»")
_GUILLEMETS = re.compile(r"«[^«»]*»")


@dataclass
class Metadata:
    """Facts found in metadata lines (``By``, ``Tags:``, ``Published:``...)."""

    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    link: str | None = None
    #: lines that looked like a date but did not parse, for warnings
    bad_dates: list[str] = field(default_factory=list)


def _split_authors(value: str) -> list[str]:
    value = re.split(r"\s*[|–—]\s*|\s+-\s+", value)[0]
    parts = re.split(r"\s*(?:,|;|&|\band\b)\s*", value)
    return [p.strip(" .") for p in parts if p.strip(" .") and not _ROLE.search(p)]


def _is_name_list(value: str) -> bool:
    """``Jane Doe and John Roe`` yes; ``the end of the year, prices rose`` no."""
    words = re.split(r"[\s,;&|]+", value.strip(" ."))
    if not words or len(words) > 12 or (_SENTENCE_END.search(value.strip()) and len(words) > 6):
        return False
    small = {
        "and",
        "de",
        "da",
        "van",
        "von",
        "der",
        "al",
        "bin",
        "la",
        "le",
        "del",
        "in",
        "for",
        "staff",
        "writer",
        "correspondent",
        "reporter",
        "editor",
        "special",
        "to",
        "the",
    }
    return all(w[:1].isupper() or w.lower() in small or not w.isalpha() for w in words if w)


def _metadata_line(line: str, meta: Metadata) -> bool:
    """Record a metadata line's value; True when ``line`` was metadata."""
    m = _META.match(line)
    if not m or len(line.split()) > 24:
        return False
    key = m.group("key").lower()
    value = m.group("value").strip()
    has_colon = ":" in line[: m.start("value")]
    if key == "by":
        if has_colon or _is_name_list(value):
            meta.authors.extend(a for a in _split_authors(value) if a not in meta.authors)
            return True
        return False
    if not has_colon and key not in (
        "published on",
        "posted on",
        "published at",
        "posted at",
        "updated",
        "last updated",
    ):
        return False
    if key in ("author", "authors", "written by", "reporter", "reporting by"):
        meta.authors.extend(a for a in _split_authors(value) if a not in meta.authors)
    elif key in ("tags", "tagged", "keywords", "topics", "categories", "category", "filed under"):
        for tag in re.split(r"\s*[,;|]\s*|\s+#", value):
            tag = tag.strip(" #.")
            if tag and tag not in meta.tags:
                meta.tags.append(tag)
    elif key in ("updated", "last updated", "modified", "last modified"):
        date = parse_date(value)
        if date is None:
            return False
        meta.updated = meta.updated or date
    elif key.startswith(("published", "first published", "posted", "date", "dated")):
        date = parse_date(value)
        if date is None:
            meta.bad_dates.append(line)
            return True
        meta.published = meta.published or date
    else:  # source, link, url...
        url = _URL.search(value)
        if url:
            meta.link = meta.link or url.group(0).rstrip(".,;")
        elif key not in ("source",):
            return False
    return True


def _is_noise(line: str) -> bool:
    if len(line) > 160:
        return False
    if _BOILERPLATE.match(line) or _RULE.match(line):
        return True
    # «Quoted» text is a quotation, not a "Home » World" trail.
    line = _GUILLEMETS.sub("q", line)
    return bool(
        _BREADCRUMB_LINE.match(line)
        and not _URL.search(line)
        and sum(line.count(c) for c in ">»›|") >= 1
    )


def _strip_glued_crumb(paragraph: str) -> str:
    m = _CRUMB_SEPARATED.match(paragraph)
    if m and m.end() < len(paragraph):
        paragraph = paragraph[m.end() :]
    m = _GLUED_CRUMB.match(paragraph)
    if m and _GLUE.search(m.group("crumb")) and len(m.group("rest").split()) >= 8:
        return m.group("rest")
    return _strip_table_crumb(paragraph)


_CRUMB_HEAD = re.compile(r"^(?P<crumb>[^:：.!?؟\n]{2,80}?)\s*[:：]\s*(?P<rest>\S.*)$", re.S)


def _strip_table_crumb(paragraph: str) -> str:
    """Drop site and section names glued before a lead, in any script.

    ``ایران پرساخبار ایران: text`` is "ایران پرس" + "اخبار ایران" run
    together: the part before the colon, folded and without spaces, splits
    wholly into two or more names from the language tables.
    """
    m = _CRUMB_HEAD.match(paragraph)
    if not m or len(m.group("rest").split()) < 8:
        return paragraph
    if _crumb_parts(fold_key(m.group("crumb"))) >= 2:
        return m.group("rest")
    return paragraph


def _crumb_parts(key: str) -> int:
    """How many known crumbs ``key`` splits into (fewest), or 0 when it does not."""
    known = labels().crumbs
    longest = labels().longest_crumb
    best = [0] + [-1] * len(key)  # best[i]: fewest parts covering key[:i]
    for end in range(1, len(key) + 1):
        for start in range(max(0, end - longest), end):
            if best[start] >= 0 and key[start:end] in known:
                parts = best[start] + 1
                if best[end] < 0 or parts < best[end]:
                    best[end] = parts
    return max(best[-1], 0) if key else 0
