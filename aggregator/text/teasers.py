"""Whether a source's entries look like teasers, so ``full_content`` would help (pure).

A teaser is short (at most :data:`TEASER_WORDS` words) and ends the way
summary-only feeds end an entry: with an ellipsis, or with a "read more"
style link or phrase. ``aggregator sources`` suggests ``full_content`` for a
source whose recent entries mostly look like that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.text.plain import html_to_text

__all__ = [
    "MIN_SAMPLE",
    "TEASER_SHARE",
    "TEASER_WORDS",
    "TeaserHint",
    "looks_like_teaser",
    "teaser_hint",
]

#: the most words an entry's text may have to count as a teaser
TEASER_WORDS = 80
#: entries needed before judging a source
MIN_SAMPLE = 3
#: the share of a source's recent entries that must look like teasers
TEASER_SHARE = 0.6

_ELLIPSIS = re.compile(r"(?:\u2026|\.\.\.|\[\s*(?:\u2026|\.\.\.)\s*\])\s*$")
_READ_MORE = re.compile(
    r"(?:read|continue|keep)\s+(?:the\s+)?(?:more|reading|full\s+(?:story|article|post))"
    r"|(?:full|whole)\s+(?:story|article)|more\s*(?:\u00bb|\u2192|>>)|\[\s*more\s*\]",
    re.I,
)
_LAST_LINK = re.compile(r"<a\b[^>]*>(?P<text>(?:(?!</a>).)*)</a>\s*(?:</\w+>\s*)*$", re.I | re.S)


def looks_like_teaser(content_html: str) -> bool:
    """Whether one entry's content is short and ends like a teaser.

    Args:
        content_html: the entry's stored (sanitised) content.

    Returns:
        True for a text of at most :data:`TEASER_WORDS` words ending with an
        ellipsis, a "read more"-like phrase, or a link whose text is one.
    """
    text = html_to_text(content_html)
    words = text.split()
    if not words or len(words) > TEASER_WORDS:
        return False
    if _ELLIPSIS.search(text):
        return True
    # The closing link of a short text sits in its last few hundred characters.
    last_link = _LAST_LINK.search(content_html[-2000:])
    if last_link is not None and _READ_MORE.search(html_to_text(last_link.group("text"))):
        return True
    tail = " ".join(words[-5:])
    return _READ_MORE.search(tail) is not None


@dataclass(frozen=True, slots=True)
class TeaserHint:
    """A suggestion to set ``full_content`` on a source."""

    #: entries that look like teasers
    teasers: int
    #: entries looked at
    sampled: int

    def __str__(self) -> str:
        return (
            f"{self.teasers} of its last {self.sampled} entries look like teasers "
            "(short, ending with an ellipsis or a 'read more' link): "
            "set 'full_content: true' to fetch each new entry's article"
        )


def teaser_hint(contents: Sequence[str]) -> TeaserHint | None:
    """A hint when most of a source's recent entries look like teasers.

    Args:
        contents: the content HTML of the source's recent entries.

    Returns:
        The hint, or None when there are too few entries or too few teasers.
    """
    if len(contents) < MIN_SAMPLE:
        return None
    teasers = sum(1 for html in contents if looks_like_teaser(html))
    if teasers < TEASER_SHARE * len(contents):
        return None
    return TeaserHint(teasers=teasers, sampled=len(contents))
