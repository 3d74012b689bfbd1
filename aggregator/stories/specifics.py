"""The specifics of a news text, and whether two texts' specifics agree (pure).

Similar wording is not the same story: the next round of talks, the third
reading of the same bill, the same league's next match all read alike. What
tells them apart is what a paraphrase keeps: the numbers, the people and
places named, the words quoted. :func:`specifics` takes them from a text's
title and lead (and the whole body, to look them up in); :func:`agree` says
whether a candidate found by the semantic signal tells the same facts.

- **numbers**: digits as written without separators (``2,800`` is ``2800``,
  ``5.75%`` is ``5.75``) and number words up to ninety-nine (``Twenty-five``
  is ``25``); a year is a number too.
- **names**: capitalised words that do not start a sentence, not a weekday,
  month or common capitalised word; ``New Zealand`` gives ``new`` and
  ``zealand``, so a rewritten name still shares its parts.
- **quotes**: the words inside quotation marks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Agreement", "Specifics", "agree", "specifics"]

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[,.]\d+)*(?![\w])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_QUOTED = re.compile(
    r"[\"\u201c\u201e\u00ab]([^\"\u201c\u201d\u201e\u00ab\u00bb]{3,120})[\"\u201d\u00bb]"
)
_SENTENCE_END = re.compile(r"[.!?:;\u2014]\s*$")
_UNITS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
#: capitalised words that name no one: time words, and the usual sentence openers
_NOT_NAMES = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "the",
        "a",
        "an",
        "and",
        "but",
        "or",
        "in",
        "on",
        "at",
        "of",
        "for",
        "to",
        "by",
        "with",
        "from",
        "after",
        "before",
        "as",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "i",
        "his",
        "her",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "when",
        "while",
        "if",
        "mr",
        "mrs",
        "ms",
        "dr",
        "said",
        "says",
        "according",
        "more",
        "some",
        "all",
        "no",
        "not",
    ]
)


@dataclass(frozen=True, slots=True)
class Specifics:
    """What a text names: of its title and lead, and of the whole text."""

    lead_numbers: frozenset[str]
    numbers: frozenset[str]
    lead_names: frozenset[str]
    names: frozenset[str]
    quotes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Agreement:
    """Whether two texts' specifics agree, and the counts that say so."""

    same: bool
    shared_numbers: int
    #: numbers one lead has that the other text never mentions
    number_conflicts: int
    shared_names: int
    #: names one lead has that the other text never mentions
    name_conflicts: int
    shared_quotes: int
    reason: str


def _number_words(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = word.lower().split("-")
        if len(parts) == 2 and parts[0] in _TENS and parts[1] in _UNITS and _UNITS[parts[1]] < 10:
            out.append(str(_TENS[parts[0]] + _UNITS[parts[1]]))
        elif len(parts) == 1 and parts[0] in _UNITS:
            out.append(str(_UNITS[parts[0]]))
        elif len(parts) == 1 and parts[0] in _TENS:
            out.append(str(_TENS[parts[0]]))
    return out


def _numbers(text: str) -> frozenset[str]:
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    found.update(_number_words(text))
    # "2" and "1" carry little; numbers from three up tell events apart
    return frozenset(n for n in found if n not in {"0", "1", "2"})


def _names(text: str) -> frozenset[str]:
    out: set[str] = set()
    for line in text.splitlines():
        previous = ""
        for match in _WORD.finditer(line):
            word = match.group()
            before = line[: match.start()]
            starts = not previous or bool(_SENTENCE_END.search(before))
            previous = word
            lower = word.lower().replace("\u2019", "'").removesuffix("'s")
            if starts or not word[0].isupper() or lower in _NOT_NAMES or len(lower) < 2:
                continue
            out.add(lower)
    return frozenset(out)


def specifics(title: str, body: str, *, lead_words: int = 60) -> Specifics:
    """The specifics of a story told as ``title`` and plain-text ``body``."""
    lead = title + "\n" + " ".join(body.split()[:lead_words])
    whole = title + "\n" + body
    quotes = frozenset(" ".join(q.lower().split()) for q in _QUOTED.findall(whole))
    return Specifics(
        lead_numbers=_numbers(lead),
        numbers=_numbers(whole),
        lead_names=_names(lead),
        names=_names(whole),
        quotes=quotes,
    )


def agree(a: Specifics, b: Specifics) -> Agreement:
    """Whether ``a`` and ``b`` tell the same facts.

    They agree when they share at least two names, or one name and one number;
    and when the numbers and names either lead has that the other text never
    mentions are fewer than those they share: a different venue, score, toll
    or date outweighs the names both stories repeat.
    """
    shared_numbers = len(a.numbers & b.numbers)
    number_conflicts = len(a.lead_numbers - b.numbers) + len(b.lead_numbers - a.numbers)
    shared_names = len(a.names & b.names)
    name_conflicts = len(a.lead_names - b.names) + len(b.lead_names - a.names)
    shared_quotes = len(a.quotes & b.quotes)
    anchored = shared_names >= 2 or (shared_names >= 1 and shared_numbers >= 1)
    conflicts = number_conflicts + name_conflicts
    support = shared_numbers + shared_names + 2 * shared_quotes
    same = anchored and conflicts < support and number_conflicts <= max(1, shared_numbers)
    if not anchored:
        reason = "too few shared names and numbers"
    elif not same:
        reason = "the specifics differ"
    else:
        reason = "the specifics agree"
    return Agreement(
        same, shared_numbers, number_conflicts, shared_names, name_conflicts, shared_quotes, reason
    )
