"""Dates and datelines as articles write them: ``parse_date`` reads a date in any of the
usual spellings, ``split_dateline`` takes ``LONDON, Nov 20 (Reuters) -`` off a paragraph.

Pure: a dateline's date is read against a reference time passed in.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import email.utils
import functools
import re
from datetime import UTC, datetime, timedelta, timezone

from aggregator.model import Dateline
from aggregator.text.labels import fold_key, labels

__all__ = ["parse_date", "split_dateline"]


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
