"""The editor's labels in every language, read once from ``text/lang/*.toml``.

One table per language holds what an editor recognises on sight and a parser
must not hard-code: the labels that head related headlines ("Read More",
"Читайте также", "بیشتر بخوانید"), photo-caption prefixes, the site and section
names scrapers glue before a lead, agencies named in datelines, and month names
as datelines write them. :func:`labels` merges every table into one set of
compiled matchers: a seed does not say its language before it is read, and the
labels of different languages do not collide.

A new language is a new file; a broken table fails at load with its file and key.
"""

# Non-Latin letters, typographic quotes and dashes here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.text.plain import tokens

__all__ = ["LANG_DIR", "Labels", "LanguageTable", "LanguageTableError", "labels", "load_tables"]

#: Where the shipped tables live.
LANG_DIR = Path(__file__).with_name("lang")

_LIST_KEYS = ("related", "related_patterns", "caption_prefixes", "crumbs", "agencies")


class LanguageTableError(ValueError):
    """A language table is unreadable or malformed; ``str()`` names the file and key."""


@dataclass(frozen=True, slots=True)
class LanguageTable:
    """One language's labels, as written in its table."""

    #: BCP 47 primary language subtag (``ru``, ``fa``...)
    language: str
    #: labels heading a list of related headlines
    related: tuple[str, ...]
    #: regular expressions for labels with a variable part
    related_patterns: tuple[str, ...]
    #: words a photo caption starts with
    caption_prefixes: tuple[str, ...]
    #: site and section names found glued before a lead
    crumbs: tuple[str, ...]
    #: agency names that stand in a dateline without parentheses
    agencies: tuple[str, ...]
    #: month names, January first; each month has one or more spellings
    months: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Labels:
    """Every table merged and compiled: what the seed parser matches against."""

    #: label-only line, or label, colon and an inline headline (group ``inline``)
    related_head: re.Pattern[str]
    #: a label alone on its line (a colon allowed): where a related list starts
    related_line: re.Pattern[str]
    #: a caption prefix followed by a colon, a dash or the end of the line
    caption: re.Pattern[str]
    #: agency names, longest first, for dateline patterns
    agency_pattern: str
    #: month names, longest first, for dateline patterns
    month_pattern: str
    #: folded month name -> month number
    months: Mapping[str, int]
    #: folded crumb names without spaces, for segmenting glued breadcrumbs
    crumbs: frozenset[str]
    #: the longest folded crumb, to bound segmentation
    longest_crumb: int


def fold_key(text: str) -> str:
    """The spelling-insensitive key of a label: folded tokens, without spaces."""
    return "".join(tokens(text))


def _strings(path: Path, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LanguageTableError(f"{path.name}: {key}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _table(path: Path) -> LanguageTable:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LanguageTableError(f"{path.name}: unreadable language table: {exc}") from exc
    language = data.get("language")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language):
        raise LanguageTableError(f"{path.name}: language: expected a two- or three-letter code")
    lists = {key: _strings(path, data, key) for key in _LIST_KEYS}
    for pattern in lists["related_patterns"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LanguageTableError(f"{path.name}: related_patterns: {pattern!r}: {exc}") from exc
    months = data.get("months", [])
    if not isinstance(months, list) or len(months) != 12:
        raise LanguageTableError(f"{path.name}: months: expected twelve lists of names")
    names = tuple(_strings(path, {"months": m}, "months") for m in months)
    if not all(names):
        raise LanguageTableError(f"{path.name}: months: every month needs a name")
    unknown = set(data) - {"language", "months", *_LIST_KEYS}
    if unknown:
        raise LanguageTableError(f"{path.name}: unknown key {sorted(unknown)[0]!r}")
    return LanguageTable(language=language, months=names, **lists)


def load_tables(folder: Path = LANG_DIR) -> tuple[LanguageTable, ...]:
    """Read every ``*.toml`` table in ``folder``, in file-name order.

    Args:
        folder: the folder holding the tables.

    Returns:
        The tables.

    Raises:
        LanguageTableError: a table is unreadable or malformed, or none exists.
    """
    tables = tuple(_table(path) for path in sorted(folder.glob("*.toml")))
    if not tables:
        raise LanguageTableError(f"{folder}: no language tables")
    return tables


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so "daha fazla oku" wins over "daha fazla".
    unique = sorted(set(words), key=lambda w: (-len(w), w))
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in unique)


def compile_labels(tables: Iterable[LanguageTable]) -> Labels:
    """Merge ``tables`` into compiled matchers.

    Args:
        tables: the language tables.

    Returns:
        The merged labels.
    """
    tables = tuple(tables)
    related = _alternation(label for t in tables for label in t.related)
    patterns = "|".join(p for t in tables for p in t.related_patterns)
    heads = "|".join(part for part in (related, patterns) if part)
    # A label alone on its line, or a label, a colon and one related headline.
    related_head = re.compile(
        r"^(?:" + heads + r")\s*(?:[:：]\s*(?P<inline>.*))?$", re.IGNORECASE | re.DOTALL
    )
    related_line = re.compile(r"^(?:" + heads + r")\s*[:：]?$", re.IGNORECASE)
    prefixes = _alternation(p for t in tables for p in t.caption_prefixes)
    caption = re.compile(r"^(?:" + prefixes + r")\s*(?:[:：\-–—]|$)", re.IGNORECASE)
    months: dict[str, int] = {}
    for table in tables:
        for number, spellings in enumerate(table.months, start=1):
            for name in spellings:
                months.setdefault(fold_key(name), number)
    crumbs = frozenset(fold_key(c) for t in tables for c in t.crumbs) - {""}
    return Labels(
        related_head=related_head,
        related_line=related_line,
        caption=caption,
        agency_pattern=_alternation(a for t in tables for a in t.agencies),
        month_pattern=_alternation(name for t in tables for m in t.months for name in m),
        months=months,
        crumbs=crumbs,
        longest_crumb=max((len(c) for c in crumbs), default=0),
    )


@functools.cache
def labels() -> Labels:
    """The shipped tables, merged and compiled once per process.

    Returns:
        The merged labels.

    Raises:
        LanguageTableError: a shipped table is malformed.
    """
    return compile_labels(load_tables())
