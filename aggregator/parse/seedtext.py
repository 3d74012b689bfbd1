"""Plain-text news articles: read them the way a careful editor would.

A scraped or pasted article is a family of styles rather than a format::

    Iranian Deputy Foreign Minister:          <- kicker (ends with a colon)
    Iran Deputy Foreign Minister Abbas ...    <- photo caption
    Qom (IP): Emphasizing that ...            <- dateline, then the lead
    Iran PressIran News: Seyed Abbas ...      <- breadcrumbs glued to the text
    Read More:                                <- related headlines, not body
    New US administration willing to ...

or a headline line, ``By Jane Doe``, ``Published: 2026-11-20 14:05 UTC``,
``LONDON (Reuters) - ...``, ``Tags: a, b``, setext-underlined headings,
hard-wrapped or one-line-per-paragraph bodies. This module turns all of them
into one :class:`~aggregator.model.RawEntry`: a headline that reads as one
(never the dateline, never a cut-off sentence), the dateline split out,
boilerplate dropped, related headlines apart, paragraphs as escaped ``<p>``.

Everything here is pure: no I/O, ``now`` and the file's ``mtime`` are passed in.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import email.utils
import functools
import html
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from aggregator._text import tokens
from aggregator.model import Dateline, RawEntry, Related, not_in_future
from aggregator.parse.languages import fold_key, labels

__all__ = [
    "Metadata",
    "extract_related",
    "humanise_filename",
    "normalise_line",
    "paragraphs_to_html",
    "parse_date",
    "parse_text_article",
    "split_dateline",
    "summarise",
]

# --------------------------------------------------------------------------- dates

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_TIME = (
    r"(?:(?:,|\s+at|\s+-|\s+–|\s*\|)?\s*(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?)?"
)
_TZ = r"(?:\s*\(?(?P<tz>Z|UTC|GMT|[A-Z]{2,5}|[+-]\d{2}:?\d{2})\)?(?![A-Za-z]))?"
_DATE_PATTERNS = (
    re.compile(
        r"(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})"
        r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?)?"
        r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?",
        re.I,
    ),
    re.compile(
        _WEEKDAY
        + _MONTH
        + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})"
        + _TIME
        + _TZ,
        re.I,
    ),
    re.compile(
        _WEEKDAY
        + r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
        + _MONTH
        + r",?\s+(?P<year>\d{4})"
        r"" + _TIME + _TZ,
        re.I,
    ),
    re.compile(r"(?P<day>\d{1,2})\.(?P<mon>\d{1,2})\.(?P<year>\d{4})" + _TIME + _TZ),
)
# Month and day without a year, as datelines write them: "LONDON, Nov 20 (Reuters)".
_DATELINE_DATE = re.compile(
    r"^(?:" + _MONTH + r"\s+(?P<day>\d{1,2})|(?P<day2>\d{1,2})\s+(?P<month2>[A-Za-z]+)\.?)$",
    re.I,
)
_ZONES = {
    "Z": 0,
    "UTC": 0,
    "GMT": 0,
    "WET": 0,
    "BST": 60,
    "CET": 60,
    "CEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "IRST": 210,
    "AZT": 240,
    "AMT": 240,
    "GET": 240,
    "GST": 240,
    "IST": 330,
    "JST": 540,
    "AEST": 600,
    "EST": -300,
    "EDT": -240,
    "CST": -360,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
}


def _zone(label: str | None) -> timezone | None:
    if not label:
        return UTC
    label = label.upper()
    if label in _ZONES:
        return timezone(timedelta(minutes=_ZONES[label]))
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", label)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return timezone(timedelta(minutes=minutes if m.group(1) == "+" else -minutes))
    return None


def parse_date(text: str) -> datetime | None:
    """Find the first explicit calendar date in ``text`` and return it in UTC.

    Understands ISO 8601 (``2026-11-20``, ``2026-11-20T14:05:00+04:00``,
    ``2026-11-20 14:05 UTC``), ``November 20, 2026``, ``Fri, 20 Nov 2026
    14:05 GMT`` (RFC 2822), ``20 November 2026, 2:05 pm``, ``20.11.2026``.
    A date without a time is taken as midnight UTC; without a zone, as UTC.

    Args:
        text: free text that may contain a date.

    Returns:
        An aware UTC datetime, or None when no valid date is found.
    """
    text = text.strip()
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            value = _build_date(m)
            if value is not None:
                return value
    return None


def _build_date(m: re.Match[str]) -> datetime | None:
    groups = m.groupdict()
    month = (
        int(groups["mon"])
        if groups.get("mon")
        else _MONTHS.get((groups.get("month") or "").lower().rstrip("."))
    )
    if not month:
        return None
    hour = int(groups.get("hour") or 0)
    ampm = (groups.get("ampm") or "").replace(".", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    zone = _zone(groups.get("tz"))
    if zone is None:
        zone = UTC  # an unknown zone abbreviation: the date is still right
    try:
        value = datetime(
            int(groups["year"]),
            month,
            int(groups["day"]),
            hour,
            int(groups.get("minute") or 0),
            int(groups.get("second") or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return value.astimezone(UTC)


# ------------------------------------------------------------------------ lines

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000\u1680]+")
_ZERO_WIDTH = re.compile("[\u200b\u2060\u00ad]")
# "Nagorno- Karabakh": a hyphen left dangling by a scraper before a capital.
_DANGLING_HYPHEN = re.compile(r"(?<=[^\W\d_])- (?=[A-Z])")


def normalise_line(line: str) -> str:
    """Collapse every kind of space (NBSP included) and drop zero-width marks.

    Args:
        line: one line of text.

    Returns:
        The line with single ASCII spaces, stripped.
    """
    return _SPACES.sub(" ", _ZERO_WIDTH.sub("", line)).strip()


def _fix_text(text: str) -> str:
    return _DANGLING_HYPHEN.sub("-", text)


# ------------------------------------------------------------------- datelines

_AGENCY = r"\((?P<agency>[A-Za-z][A-Za-z0-9 .&/-]{0,24})\)"
# An optional ", Country" or ", State" after the place.
_REGION = r"(?:, [A-Z][\w'’.]*(?: [A-Z][\w'’.]*){0,2})?"
_PLACE = r"(?P<place>[A-Z][\w'’.-]*(?:[ -][A-Z][\w'’.-]*){0,3}" + _REGION + ")"
_PLACE_CAPS = r"(?P<place>[A-Z][A-Z'’.-]+(?: [A-Z][A-Z'’.-]+){0,3}" + _REGION + ")"
_DL_DATE = r"(?:,\s*(?P<dldate>[A-Za-z]{3,9}\.? \d{1,2}|\d{1,2} [A-Za-z]{3,9}))?"
_SEP = r"\s*(?::|-{1,2}|–|—|\.)\s+"
_DATELINE_AGENCY = re.compile(
    r"^" + _PLACE + _DL_DATE + r"\s*" + _AGENCY + _SEP + r"(?P<rest>\S.*)$", re.S
)
_DATELINE_CAPS = re.compile(
    r"^" + _PLACE_CAPS + _DL_DATE + r"\s*(?:-{1,2}|–|—)\s+(?P<rest>\S.*)$", re.S
)


def split_dateline(paragraph: str) -> tuple[Dateline | None, str, str | None]:
    """Split a leading dateline off a paragraph.

    Recognises ``Qom (IP): text``, ``LONDON (Reuters) - text``,
    ``LONDON, Nov 20 (Reuters) - text``, ``Yerevan, Armenia (AP) — text`` and
    ``KYIV — text`` (an all-capitals place with a dash and no agency), and in
    any script the forms regional agencies use (see :func:`_split_script_dateline`):
    ``МОСКВА, 27 ноября. /ТАСС/.``, ``قم (ایران پرس):``, ``İSTANBUL (AA) –``,
    ``Bakı, 27 noyabr, AZƏRTAC.``, ``تهران- ایرنا-``.

    Args:
        paragraph: the first paragraph of an article.

    Returns:
        ``(dateline, rest of the paragraph, month-and-day text or None)``;
        ``(None, paragraph, None)`` when there is no dateline.
    """
    for pattern in (_DATELINE_AGENCY, _DATELINE_CAPS):
        m = pattern.match(paragraph)
        if not m:
            continue
        place = m.group("place")
        if len(place) > 48:
            continue
        agency = m.groupdict().get("agency")
        return Dateline(place=_place_case(place), agency=agency), m.group("rest"), m.group("dldate")
    return _split_script_dateline(paragraph)


_LETTER = r"[^\W\d_]"
_WORD = _LETTER + r"(?:[\w'’.-]*[^\W_])?"


@functools.cache
def _script_dateline() -> re.Pattern[str]:
    """The dateline in any script, with agencies and months from the language tables."""
    table = labels()
    place = r"(?P<place>" + _WORD + r"(?:[ -]" + _WORD + r"){0,2}(?:[,،] " + _WORD + r")?)"
    date = (
        r"(?:\s*[,،.]\s*(?P<dldate>\d{1,2}\s+(?:"
        + table.month_pattern
        + r")|(?:"
        + table.month_pattern
        + r")\s+\d{1,2})(?!\w))?"
    )
    # A known agency stands bare between punctuation; any other sits in
    # parentheses or slashes: "(ایران پرس)", "/ТАСС/".
    agency = (
        r"(?:\s*[,،.]\s*|\s*[-–—]\s*|\s*)(?:\((?P<paren>[^()\n]{1,30})\)|/(?P<slash>[^/\n]{1,30})/)"
        r"\s*(?:[.:]|[-–—]|\.\s*[-–—])?"
        r"|(?:\s*[,،.]\s*|\s*[-–—]\s*)(?P<known>" + table.agency_pattern + r")\s*(?:[.:]|[-–—])"
    )
    return re.compile(r"^" + place + date + r"(?:" + agency + r")\s+(?P<rest>\S.*)$", re.S | re.I)


def _split_script_dateline(paragraph: str) -> tuple[Dateline | None, str, str | None]:
    """A dateline in any script: a place, an optional day and month, an agency.

    Args:
        paragraph: the first paragraph of an article.

    Returns:
        As :func:`split_dateline`.
    """
    m = _script_dateline().match(paragraph)
    if not m:
        return None, paragraph, None
    place = m.group("place")
    # Every word of a place name is capitalised ("Нью-Йорк", "İSTANBUL"), or
    # written in a script without case ("قم"): "He said (AFP):" is no dateline.
    if len(place) > 48 or any(w[:1].islower() for w in re.split(r"[ ,،]+", place)):
        return None, paragraph, None
    agency = (m.group("paren") or m.group("slash") or m.group("known")).strip()
    return Dateline(place=_place_case(place), agency=agency), m.group("rest"), m.group("dldate")


def _place_case(place: str) -> str:
    """``NEW YORK`` -> ``New York``; mixed-case places stay as written."""
    parts = []
    for part in place.split(", "):
        if part.upper() == part:
            part = " ".join(
                _capitalize(w) if w.isalpha() and len(w) > 2 else w for w in part.split(" ")
            )
        parts.append(part)
    return ", ".join(parts)


# Letters only Turkish and Azerbaijani write: their "I" lower-cases to "ı".
_TURKIC = re.compile("[İĞŞƏ]")


def _capitalize(word: str) -> str:
    """``MOSCOW`` -> ``Moscow``; ``IĞDIR`` -> ``Iğdır`` (Turkish dotted and dotless i)."""
    if _TURKIC.search(word):
        rest = word[1:].replace("I", "ı").replace("İ", "i")
        return word[:1] + rest.lower()
    return word.capitalize()


def _dateline_date(text: str, reference: datetime) -> datetime | None:
    """A dateline's month and day, in the latest year that is not after ``reference``."""
    m = _DATELINE_DATE.match(text.strip())
    if not m:
        return None
    month_name = (m.group("month") or m.group("month2") or "").lower().rstrip(".")
    month = _MONTHS.get(month_name)
    day = int(m.group("day") or m.group("day2"))
    if not month:
        return None
    return _latest_date(month, day, reference)


def _table_dateline_date(text: str, reference: datetime) -> datetime | None:
    """A dateline's day and month in any language of the tables ("27 ноября", "26 Kasım")."""
    m = re.fullmatch(
        r"(?:(?P<d1>\d{1,2})\s+(?P<m1>.+)|(?P<m2>.+?)\s+(?P<d2>\d{1,2}))", text.strip()
    )
    if not m:
        return None
    month = labels().months.get(fold_key(m.group("m1") or m.group("m2")))
    if month is None:
        return None
    return _latest_date(month, int(m.group("d1") or m.group("d2")), reference)


def _latest_date(month: int, day: int, reference: datetime) -> datetime | None:
    """The month and day in the latest year that is not after ``reference``."""
    for year in (reference.year, reference.year - 1):
        try:
            value = datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            continue
        if value <= reference:
            return value
    return None


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


# --------------------------------------------------------------------- related


def _related_item(line: str) -> Related | None:
    line = _BULLET.sub("", line).strip()
    if not line:
        return None
    m = _MD_LINK.match(line)
    if m:
        return Related(title=normalise_line(m.group("title")), link=m.group("url"))
    url = _URL.search(line)
    if url:
        title = (line[: url.start()] + line[url.end() :]).strip(" -–—:|()<>[]")
        if not title:
            return None
        return Related(title=title, link=url.group(0).rstrip(".,;"))
    return Related(title=_fix_text(line))


def extract_related(lines: Sequence[str]) -> tuple[list[str], list[Related]]:
    """Take "Read More:" / "Читайте также:" / "اقرأ المزيد:" headlines out of the lines.

    The labels are every language table's ``related`` (see
    :mod:`aggregator.parse.languages`).

    A marker line on its own starts a list that runs to the end (bare URLs on
    their own line attach to the headline above); a marker with text after the
    colon is a single related headline wherever it stands.

    Args:
        lines: normalised lines of the article.

    Returns:
        ``(remaining lines, related headlines)``.
    """
    kept: list[str] = []
    related: list[Related] = []
    in_list = False
    for line in lines:
        if in_list:
            if not line:
                continue
            if _SENTENCE_END.search(line) and len(line.split()) > 30:
                in_list = False  # a paragraph after all: the list has ended
                kept.append(line)
                continue
            if _URL.fullmatch(line) and related and related[-1].link is None:
                related[-1] = Related(title=related[-1].title, link=line)
                continue
            if _META.match(line) or _is_noise(line):
                kept.append(line)
                continue
            item = _related_item(line)
            if item is not None:
                related.append(item)
            continue
        m = labels().related_head.match(line)
        if m and len(line) <= 200:
            inline = (m.group("inline") or "").strip()
            if inline:
                item = _related_item(inline)
                if item is not None:
                    related.append(item)
            else:
                in_list = True
            kept.append("")
            continue
        kept.append(line)
    return kept, related


# ------------------------------------------------------------------ paragraphs


def _join_lines(lines: Iterable[str]) -> str:
    out = ""
    for line in lines:
        if not out:
            out = line
        elif out.endswith("-") and not out.endswith(" -") and line[:1].isalpha():
            out += line  # a word hyphenated across a hard wrap
        else:
            out += " " + line
    return out


def _split_block(lines: list[str]) -> list[list[str]]:
    """Split one blank-line-separated block into paragraphs.

    Hard-wrapped text (short lines of similar width) is one paragraph per
    block, except where a line ends a sentence well short of the wrap width.
    Long lines are one paragraph each (one-line-per-paragraph files).
    """
    if len(lines) == 1:
        return [lines]
    if all(_BULLET.match(line) for line in lines):
        return [lines]
    width = max(len(line) for line in lines)
    if width > 100:
        return [[line] for line in lines]
    out: list[list[str]] = [[]]
    for line in lines:
        out[-1].append(line)
        if _SENTENCE_END.search(line) and len(line) < 0.6 * width:
            out.append([])
    return [p for p in out if p]


def _blocks(lines: Sequence[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def paragraphs_to_html(blocks: Sequence[tuple[str, str | list[str]]]) -> str:
    """Render paragraphs, headings and lists as escaped HTML.

    Args:
        blocks: ``("p", text)``, ``("h", text)`` or ``("ul", [items])``.

    Returns:
        HTML with every text escaped, one element per line.
    """
    parts: list[str] = []
    for kind, value in blocks:
        if kind == "ul" and isinstance(value, list):
            items = "".join(f"<li>{html.escape(v, quote=False)}</li>" for v in value)
            parts.append(f"<ul>{items}</ul>")
        elif isinstance(value, str):
            tag = "h2" if kind == "h" else "p"
            parts.append(f"<{tag}>{html.escape(value, quote=False)}</{tag}>")
    return "\n".join(parts)


def summarise(text: str, limit: int = 300) -> str:
    """A plain-text summary: whole sentences up to ``limit`` characters.

    Args:
        text: the lead paragraph(s) as plain text.
        limit: maximum length.

    Returns:
        The first sentences that fit; a single over-long sentence is cut at a
        word boundary and ends with an ellipsis.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    sentences = _sentences(text)
    out = ""
    for sentence in sentences:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit:
            break
        out = candidate
    if out:
        return out
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return cut + "…"


def _sentences(text: str) -> list[str]:
    # Split after . ! ? (and a closing quote) followed by a capital or a
    # letter of a script without case; keep common abbreviations (Mr., Dr.,
    # U.S.) and initials together.
    # Two fixed-width look-behinds: Python's re refuses an optional part in one.
    parts = re.split(r"(?:(?<=[.!?؟։])|(?<=[.!?؟։][\"”’»)]))\s+(?=[\"“(«]?(?:[^\W_]))", text)
    out: list[str] = []
    for part in parts:
        opening = part.lstrip('"“(«')[:1]
        if out and (
            opening.islower()
            or re.search(r"(?:\b[A-Z]|\bMr|\bMrs|\bMs|\bDr|\bSt|\bNo|\bvs|\bU\.S)\.$", out[-1])
        ):
            out[-1] += " " + part
        else:
            out.append(part)
    return out


def humanise_filename(relpath: str) -> str | None:
    """``climate/coal-phase-down_deal.txt`` -> ``Coal phase down deal``.

    Args:
        relpath: the seed's path relative to the seeds folder.

    Returns:
        A readable title, or None when the name is only a number or a hash.
    """
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = re.sub(r"^\d+_[0-9a-f]{8,}$|^[0-9a-f]{8,}$|^\d+$", "", stem, flags=re.I)
    words = [w for w in re.split(r"[-_ .]+", stem) if w and not re.fullmatch(r"\d+", w)]
    if len(words) < 2:
        return None
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------- parsing


def _head_like(line: str) -> bool:
    """Could this line be a kicker, headline, caption or label (not body)?"""
    words = len(line.split())
    if words > 25 or len(line) > 180:
        return False
    if split_dateline(line)[0] is not None and words > 6:
        return False
    return not (_SENTENCE_END.search(line) and words >= 14)


def _is_wrapped(block: list[str]) -> bool:
    """A hard-wrapped paragraph: lines continue one another's sentences."""
    if len(block) < 2:
        return False
    for first, second in itertools.pairwise(block):
        if not re.search(r"[.!?:\"”]$", first) and second[:1].islower():
            return True
    return len(block) >= 3 and max(len(line) for line in block) >= 60


def _is_caption(line: str, kicker: str | None) -> bool:
    if re.match(r"^(?:photo|image|file photo|picture|caption|pictured)\b", line, re.I):
        return True
    if labels().caption.match(line) or _is_script_caption(line, kicker):
        return True
    if line.startswith("(") and line.endswith(")"):
        return True
    if kicker is None or _SENTENCE_END.search(line):
        return False
    # A caption under a kicker is a title-case noun phrase about the same
    # person ("Iran Deputy Foreign Minister Abbas Araghchi").
    small = {"of", "the", "and", "for", "in", "on", "at", "to", "a", "an", "de", "al"}
    words = [w for w in re.findall(r"[\w'’-]+", line) if w.lower() not in small]
    if not words or not all(w[:1].isupper() or w[:1].isdigit() for w in words):
        return False
    kicker_words = {w.lower() for w in re.findall(r"[\w'’-]+", kicker)} - small
    return len(kicker_words & {w.lower() for w in words}) >= 2


def _is_script_caption(line: str, kicker: str | None) -> bool:
    """A caption under a kicker in a script whose nouns are not capitalised.

    Russian, Persian, Arabic and Armenian captions repeat the kicker's words
    ("Министр иностранных дел России Сергей Лавров" under "Министр
    иностранных дел России:") without the title case English captions have.
    """
    if kicker is None or _SENTENCE_END.search(line) or len(line.split()) > 16:
        return False
    if not any(c.isalpha() and ord(c) > 0x24F for c in line):
        return False
    return len(set(tokens(kicker)) & set(tokens(line))) >= 2


def _is_portrait_caption(line: str, lead: str | None) -> bool:
    """A photo caption under the headline in a cased non-Latin script: a title and a name.

    "Министр иностранных дел России Сергей Лавров": a noun phrase without final
    punctuation ending in a capitalised first name and surname, the person the
    lead speaks of (either name as a prefix of a lead word, so that "Лаврова"
    counts for "Лавров").
    """
    words = line.split()
    if not lead or not 3 <= len(words) <= 12 or _SENTENCE_END.search(line):
        return False
    if any(c in line for c in ':;«»"“”') or not any(c.isalpha() and ord(c) > 0x24F for c in line):
        return False
    name = words[-2:]
    if not all(w.isalpha() and w[:1].isupper() and not w.isupper() for w in name):
        return False
    lead_words = set(tokens(lead))
    return all(any(t.startswith(tokens(w)[0][:4]) for t in lead_words) for w in name if tokens(w))


def _headline_quote(paragraph: str) -> str | None:
    """The lead's first quotation that reads as a headline, with its quotation marks."""
    found = sorted(
        (m.start(), m.group("q").strip(), marks)
        for pattern, marks in ((_QUOTE, ("\u201c", "\u201d")), (_GUILLEMET_QUOTE, ("«", "»")))
        for m in pattern.finditer(paragraph)
    )
    for _, quote, (opening, closing) in found:
        first = quote[:1]
        # Capitalised, or in a script without case (Arabic, Persian).
        if 4 <= len(quote.split()) <= 25 and (
            first.isupper() or (first.isalpha() and not first.islower())
        ):
            return f"{opening}{quote.rstrip('.')}{closing}"
    return None


def _first_sentence(paragraph: str, max_words: int) -> str | None:
    sentences = _sentences(paragraph)
    if not sentences:
        return None
    first = sentences[0].strip()
    if len(first.split()) > max_words:
        return None
    return first.rstrip(".")


@dataclass(frozen=True, slots=True)
class _Head:
    title: str | None
    extra: tuple[str, ...]


def _title_from_head(head: list[tuple[str, bool]], lead: str | None) -> _Head:
    """Choose a headline from the head lines (text, is_marked_heading)."""
    if not head:
        return _Head(None, ())
    marked = [i for i, (_, is_heading) in enumerate(head) if is_heading]
    kicker: str | None = None
    start = 0
    first = head[0][0]
    if first.endswith(":") and len(first.split()) <= 10 and len(head) >= 1:
        kicker = first[:-1].strip()
        start = 1
    rest = head[start:]
    if marked:
        index = marked[0]
        title = head[index][0]
        if kicker and index == 1:
            title = f"{kicker}: {title}"
        extra = tuple(t for i, (t, _) in enumerate(head) if i != index and i >= start)
        return _Head(title, tuple(e for e in extra if not _is_caption(e, kicker)))
    candidates = [
        t
        for i, (t, _) in enumerate(rest)
        if not _is_caption(t, kicker) and not (i and _is_portrait_caption(t, lead))
    ]
    # A section label above the headline ("SHIPPING", "WORLD NEWS").
    while len(candidates) > 1 and candidates[0].isupper() and len(candidates[0].split()) <= 3:
        candidates = candidates[1:]
    if kicker:
        if candidates:
            return _Head(f"{kicker}: {candidates[0]}", tuple(candidates[1:]))
        # Kicker above a photo caption: the headline itself is missing. News
        # headlines of this style read "Speaker: quote", so complete it from
        # the lead's first quotation, else its first (short) sentence.
        quote = _headline_quote(lead or "")
        if quote:
            return _Head(f"{kicker}: {quote}", ())
        sentence = _first_sentence(lead or "", 20)
        if sentence:
            return _Head(f"{kicker}: {sentence}", ())
        return _Head(kicker, ())
    if candidates:
        return _Head(candidates[0], tuple(candidates[1:]))
    return _Head(None, ())


def _headline_case(title: str) -> str:
    """Headlines carry no full stop: drop one (not an ellipsis or an initial)."""
    title = title.strip()
    if title.endswith(".") and not title.endswith("..") and not re.search(r"\b[A-Z]\.$", title):
        title = title[:-1].rstrip()
    return title


def parse_text_article(
    text: str,
    *,
    relpath: str,
    identity: str,
    mtime: datetime,
    now: datetime,
) -> tuple[RawEntry, tuple[str, ...]]:
    """Read one plain-text article.

    Args:
        text: the decoded text (LF line ends, no control characters).
        relpath: the file's path relative to the seeds folder (for messages
            and a fallback title).
        identity: the entry identity to give the item.
        mtime: the file's modification time (the date of last resort).
        now: the current time; no date may be later.

    Returns:
        The entry and one-line warnings (bad dates, dates in the future).

    Raises:
        ValueError: the text has no usable content (the caller names the file).
    """
    warnings: list[str] = []
    lines, marked = _mark_headings(text)
    lines, related = extract_related(lines)
    meta, kept = _take_metadata(lines, marked)
    for bad in meta.bad_dates:
        warnings.append(f"date not understood: {bad!r}")

    blocks = _blocks(kept)
    if not blocks:
        raise ValueError("no text content")
    head, body_blocks = _split_head(blocks, marked)
    head = _take_head_date(head, meta)
    paragraphs = _paragraphs(body_blocks, marked)
    dateline, dateline_date, paragraphs, head = _find_dateline(paragraphs, head, now)
    paragraphs = _cleaned(paragraphs)

    lead_text = next((value for kind, value in paragraphs if kind == "p"), None)
    title, paragraphs = _choose_title(head, lead_text, paragraphs, relpath)
    published, updated, date_is_guess = _dates(meta, dateline_date, mtime, now, warnings)

    html_blocks: list[tuple[str, str | list[str]]] = [
        (kind, value.split("\n") if kind == "ul" else value) for kind, value in paragraphs
    ]
    content = paragraphs_to_html(html_blocks)
    summary = summarise(lead_text) if lead_text else (title or "")
    return RawEntry(
        identity=identity,
        title=title,
        link=meta.link,
        content=content or None,
        content_is_html=True,
        summary=summary or None,
        summary_is_html=False,
        published=published,
        updated=updated,
        authors=tuple(meta.authors),
        tags=tuple(meta.tags),
        dateline=dateline,
        related=tuple(related),
        base_url=meta.link,
        date_is_guess=date_is_guess,
    ), tuple(warnings)


def _mark_headings(text: str) -> tuple[list[str], set[str]]:
    """The text's lines, normalised; Setext and ATX headings marked, their underlines dropped.

    Returns:
        The lines, and the text of the heading lines.
    """
    raw_lines = [normalise_line(line) for line in text.split("\n")]
    lines: list[str] = []
    headings: set[int] = set()
    for i, line in enumerate(raw_lines):
        if _SETEXT.match(line) and lines and lines[-1] and i > 0 and raw_lines[i - 1]:
            headings.add(len(lines) - 1)
            continue
        m = _ATX.match(line)
        if m:
            headings.add(len(lines))
            lines.append(m.group("text"))
            continue
        lines.append(line)
    return lines, {lines[i] for i in headings}


def _take_metadata(lines: list[str], marked: set[str]) -> tuple[Metadata, list[str]]:
    """Metadata lines (author, date, tags...) and noise read out; each leaves a blank line."""
    meta = Metadata()
    kept: list[str] = []
    for line in lines:
        if line and line not in marked and (_metadata_line(line, meta) or _is_noise(line)):
            kept.append("")
            continue
        kept.append(line)
    return meta, kept


def _split_head(
    blocks: list[list[str]], marked: set[str]
) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    """Head: leading short lines (kicker, headline, caption, date line); body:
    from the first paragraph-like block or dateline on.

    Returns:
        The head lines (each with whether it is a heading) and the body's blocks.
    """
    head: list[tuple[str, bool]] = []
    body_blocks: list[list[str]] = []
    for block in blocks:
        if body_blocks:
            body_blocks.append(block)
            continue
        if all(_head_like(line) for line in block) and not _is_wrapped(block):
            head.extend((line, line in marked) for line in block)
            continue
        # A one-line-per-paragraph block may start with head lines.
        lead = 0
        while (
            lead < len(block) - 1
            and _head_like(block[lead])
            and len(block[lead + 1]) > 100
            and not _is_wrapped(block[lead : lead + 2])
        ):
            head.append((block[lead], block[lead] in marked))
            lead += 1
        body_blocks.append(block[lead:])
    return head, body_blocks


def _take_head_date(head: list[tuple[str, bool]], meta: Metadata) -> list[tuple[str, bool]]:
    """A standalone date line in the head is the publication date: moved into ``meta``."""
    head_kept: list[tuple[str, bool]] = []
    for line, is_heading in head:
        date = parse_date(line) if not is_heading and len(line.split()) <= 8 else None
        if date is not None and re.search(r"\d{4}", line):
            meta.published = meta.published or date
            continue
        head_kept.append((line, is_heading))
    return head_kept


def _paragraphs(body_blocks: list[list[str]], marked: set[str]) -> list[tuple[str, str]]:
    """The body as (kind, text): ``p`` paragraphs, ``ul`` bullet lists, ``h`` headings."""
    paragraphs: list[tuple[str, str]] = []
    for block in body_blocks:
        for para in _split_block(block):
            if all(_BULLET.match(line) for line in para) and len(para) > 1:
                paragraphs.append(("ul", "\n".join(_BULLET.sub("", line) for line in para)))
            elif len(para) == 1 and para[0] in marked:
                paragraphs.append(("h", para[0]))
            else:
                paragraphs.append(("p", _join_lines(para)))
    return paragraphs


def _find_dateline(
    paragraphs: list[tuple[str, str]], head: list[tuple[str, bool]], now: datetime
) -> tuple[Dateline | None, datetime | None, list[tuple[str, str]], list[tuple[str, bool]]]:
    """The dateline, opening the first paragraph or alone as the head's last line.

    Returns:
        The dateline, the date it gives, the paragraphs and the head without it.
    """
    dateline: Dateline | None = None
    dateline_date: datetime | None = None
    first_p = next((i for i, (kind, _) in enumerate(paragraphs) if kind == "p"), None)
    if first_p is not None:
        dateline, rest, dl_date = split_dateline(paragraphs[first_p][1])
        if dateline is not None:
            paragraphs = list(paragraphs)
            paragraphs[first_p] = ("p", rest)
            if dl_date:
                dateline_date = _dateline_date(dl_date, now) or _table_dateline_date(dl_date, now)
    if dateline is None and head:
        # A dateline alone on its own line: "YEREVAN, Armenia (AP) —".
        m = re.match(
            r"^(?P<place>[A-Z][\w'’., -]{1,40}?)\s*\((?P<agency>[^)]{1,24})\)\s*[-–—:]?$",
            head[-1][0],
        )
        if m:
            dateline = Dateline(
                place=_place_case(m.group("place").strip(" ,")), agency=m.group("agency")
            )
            head = head[:-1]
    return dateline, dateline_date, paragraphs, head


def _cleaned(paragraphs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Breadcrumbs glued to a paragraph's start cut, text fixed, empty paragraphs dropped."""
    paragraphs = [
        (kind, _strip_glued_crumb(value) if kind == "p" else value) for kind, value in paragraphs
    ]
    return [(kind, _fix_text(value)) for kind, value in paragraphs if value.strip()]


def _choose_title(
    head: list[tuple[str, bool]],
    lead_text: str | None,
    paragraphs: list[tuple[str, str]],
    relpath: str,
) -> tuple[str | None, list[tuple[str, str]]]:
    """The headline from the head, else the lead's first sentence, else the file name.

    Returns:
        The title, and the paragraphs with any standfirst under the headline first.

    Raises:
        ValueError: neither a title nor any paragraph.
    """
    chosen = _title_from_head(head, lead_text)
    title = chosen.title
    if chosen.extra:
        # A standfirst under the headline is part of the story, not noise.
        decks = [("p", e) for e in chosen.extra if len(e.split()) >= 6]
        paragraphs = decks + paragraphs
    if title is None and lead_text:
        title = _first_sentence(lead_text, 25) or humanise_filename(relpath)
        if title is None:
            sentences = _sentences(lead_text)
            title = sentences[0].rstrip(".") if sentences else None
    if title is None:
        title = humanise_filename(relpath)
    if not paragraphs and not title:
        raise ValueError("no usable text content")
    title = _headline_case(_fix_text(title)) if title else None
    return title, paragraphs


def _dates(
    meta: Metadata,
    dateline_date: datetime | None,
    mtime: datetime,
    now: datetime,
    warnings: list[str],
) -> tuple[datetime, datetime | None, bool]:
    """Published (metadata, else the dateline's date, else the file's mtime), updated, guessed.

    A date later than ``now`` is ignored with a warning.
    """
    claimed = meta.published or dateline_date
    published = not_in_future(claimed, now)
    if claimed is not None and published is None:
        warnings.append(f"date {claimed.isoformat()} is in the future; ignored")
    updated = not_in_future(meta.updated, now)
    date_is_guess = False
    if published is None:
        published = min(mtime, now)
        date_is_guess = True
    return published, updated, date_is_guess
