"""CSS selectors for ``full_content: {selector: ...}``, on soupsieve.

A private leaf module: the one place that imports ``soupsieve`` (and the only
other one besides feed discovery that imports ``bs4``, whose trees soupsieve
walks). :func:`check_selector` validates a selector when the config loads;
:func:`select_html` runs it over a page in the CPU stage.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["MAX_SELECTOR_LENGTH", "SelectorError", "check_selector", "select_html"]

#: longest selector accepted, in characters
MAX_SELECTOR_LENGTH = 500


class SelectorError(ValueError):
    """A CSS selector soupsieve cannot compile; ``str()`` is one line."""


@lru_cache(maxsize=64)
def _compiled(selector: str) -> Any:
    if not selector.strip():
        raise SelectorError("empty CSS selector")
    if len(selector) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"CSS selector longer than {MAX_SELECTOR_LENGTH} characters")
    # Imported on first use: every command loads the config, and only a
    # configured selector needs soupsieve (and bs4 behind it).
    import soupsieve

    try:
        return soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        # Its message draws the selector with a caret over three lines.
        raise SelectorError(f"invalid CSS selector: {str(exc).splitlines()[0]}") from exc
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise SelectorError(f"unsupported CSS selector: {exc}") from exc


def check_selector(selector: str) -> None:
    """Raise :class:`SelectorError` when ``selector`` cannot be compiled."""
    _compiled(selector)


def select_html(html: str, selector: str) -> list[str]:
    """The outer HTML of the elements ``selector`` matches, in document order.

    An element inside another match is part of that match and not repeated.

    Raises:
        SelectorError: the selector cannot be compiled.
    """
    from bs4 import BeautifulSoup, Tag

    compiled = _compiled(selector)
    soup = BeautifulSoup(html, "lxml")
    found: list[Tag] = [el for el in compiled.select(soup) if isinstance(el, Tag)]
    chosen = {id(el) for el in found}
    return [str(el) for el in found if not any(id(parent) in chosen for parent in el.parents)]
