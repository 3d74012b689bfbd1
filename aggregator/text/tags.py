"""Language tags: a declared language as a well-formed BCP 47 tag, and which way its text runs.

Pure and light (the standard library alone): the renderers use both, and the
process that publishes imports them without the language detector
(:mod:`aggregator.text.language`, numpy) or the sanitiser that
:mod:`aggregator.normalise` brings.
"""

from __future__ import annotations

import functools
import re

__all__ = ["LANGUAGE_TAG_LIMIT", "direction", "language_tag"]

# RFC 5646 section 2.1, well-formed tags (grandfathered irregular tags aside):
# language[-extlang][-script][-region](-variant)*(-extension)*[-privateuse], or
# privateuse alone. The primary subtag is an ISO 639 code (two or three
# letters): the 4-8 letter forms the grammar reserves name no language, so
# "english" is refused rather than published.
_LANGUAGE_TAG_RE = re.compile(
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}"
    r"(?:-[a-z]{4})?"
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"
    r"|x(?:-[a-z0-9]{1,8})+)",
)
#: Longest language tag kept (the store's column width).
LANGUAGE_TAG_LIMIT = 35


@functools.lru_cache(maxsize=256)  # one per feed, asked for each entry
def language_tag(value: str | None) -> str | None:
    """``value`` as a well-formed BCP 47 language tag in canonical case, or None.

    ``en_us`` and ``EN-us`` become ``en-US``, ``az-latn-az`` becomes
    ``az-Latn-AZ``; anything that is not a well-formed tag (``english``,
    ``en-``, a script, markup) is refused. The one check every published
    ``xml:lang``, JSON Feed ``language`` and HTML ``lang`` goes through.

    Args:
        value: a language as a source or config declares it.

    Returns:
        The tag, or None when ``value`` is missing or not well-formed.
    """
    if not value:
        return None
    candidate = value.strip().replace("_", "-").lower()
    if len(candidate) > LANGUAGE_TAG_LIMIT or not candidate.isascii():
        return None
    if _LANGUAGE_TAG_RE.fullmatch(candidate) is None:
        return None
    # Case by position (RFC 5646 section 2.1.1): script title case, region
    # upper case, all else (and everything after a singleton) lower case.
    out: list[str] = []
    after_singleton = False
    for index, part in enumerate(candidate.split("-")):
        after_singleton = after_singleton or len(part) == 1
        if index and not after_singleton and len(part) == 4 and part.isalpha():
            part = part.title()
        elif index and not after_singleton and len(part) == 2:
            part = part.upper()
        out.append(part)
    return "-".join(out)


# Scripts whose text runs right to left (ISO 15924 codes).
_RTL_SCRIPTS = frozenset({"arab", "hebr", "syrc", "thaa", "nkoo", "adlm", "rohg", "mand", "samr"})
# Languages written right to left by default (their usual script is one of the above).
_RTL_LANGUAGES = frozenset(
    {"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi", "dv", "ckb", "arz", "ary", "prs", "pnb"}
)
_SCRIPT_SUBTAG = re.compile(r"^[A-Za-z]{4}$")


def direction(tag: str | None) -> str | None:
    """Which way text in the language ``tag`` runs.

    Args:
        tag: a BCP 47 language tag (``fa``, ``ar-EG``, ``az-Arab``), or None.

    Returns:
        ``"rtl"`` for right-to-left languages and scripts, ``"ltr"`` for the
        rest, None when there is no tag.
    """
    if not tag:
        return None
    subtags = tag.lower().replace("_", "-").split("-")
    script = next((s for s in subtags[1:] if _SCRIPT_SUBTAG.match(s)), None)
    if script is not None:
        return "rtl" if script in _RTL_SCRIPTS else "ltr"
    return "rtl" if subtags[0] in _RTL_LANGUAGES else "ltr"
