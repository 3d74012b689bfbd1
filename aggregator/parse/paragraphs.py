"""A plain-text body as paragraphs: blocks of lines joined, escaped ``<p>`` HTML, a summary
of whole sentences, a title from a file name.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from aggregator.parse.textmeta import (
    _BULLET,
    _SENTENCE_END,
)

__all__ = ["humanise_filename", "paragraphs_to_html", "summarise"]


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
