"""Guarded regular expressions for topic queries, on RE2 (linear time).

A private leaf module: the one place that imports ``re2`` (google-re2), so the
rest of the code sees a small typed surface; it imports it when the first
pattern is compiled. RE2 matches in time linear in the
text, whatever the pattern, so a pattern from the config can never hang a
match: ``(a+)+$`` against a long run of ``a`` costs the same as ``a+$``. What
RE2 cannot run in linear time (backreferences, lookaround) it refuses to
compile; :func:`compile_pattern` turns that into a one-line reason, and caps
the pattern's length and compiled size so a pattern also has a bounded memory
cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_PATTERN_LENGTH", "MAX_PROGRAM_SIZE", "Pattern", "PatternError", "compile_pattern"]

#: longest pattern source accepted, in characters
MAX_PATTERN_LENGTH = 1000
# RE2's memory budget for one compiled pattern; a pattern over it is refused
# ("pattern too large") instead of degrading to a slower engine.
_MAX_MEMORY = 1 << 20
#: Largest compiled program accepted (RE2's ``programsize``). Linear time is
#: not cheap time: a big program exhausts the DFA's memory and RE2 falls back
#: to its NFA, 6-26 s per MiB of text for ``.{500}Q`` (4,005) or
#: ``(a|aa){500}b`` (2,505). Real queries compile to tens (``\bIran\b``: 10;
#: seventeen country names: 98); 2,005 still ran at DFA speed.
MAX_PROGRAM_SIZE = 1000


class PatternError(ValueError):
    """A pattern RE2 cannot run in linear time, or over the size bounds."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern; search it with :meth:`search`."""

    #: the pattern as written, between the slashes
    source: str
    ignore_case: bool
    _compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> str | None:
        """The first match in ``text`` (may be empty for ``/^/``), or None."""
        found = self._compiled.search(text)
        if found is None:
            return None
        matched: str = found.group(0)
        return matched


def compile_pattern(source: str, *, ignore_case: bool = False) -> Pattern:
    """Compile ``source`` with RE2 syntax.

    Args:
        source: the pattern (RE2 syntax: Perl-like without backreferences or
            lookaround).
        ignore_case: match case-insensitively (the ``/i`` flag).

    Returns:
        The compiled pattern.

    Raises:
        PatternError: the pattern is longer than :data:`MAX_PATTERN_LENGTH`,
            compiles to more than RE2's memory budget, or uses a feature that
            needs backtracking; the message says which.
    """
    if len(source) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    # Imported by the first pattern: a config without one never loads RE2
    # (1.5 MiB of C++ library in a daemon at rest).
    import re2

    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.max_mem = _MAX_MEMORY
    # Errors come back as exceptions; RE2's own stderr log would only repeat them.
    options.log_errors = False
    try:
        compiled = re2.compile(source, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"pattern refused: {reason} (patterns run on RE2 in linear time and bounded "
            "memory: no backreferences or lookaround, no huge repetitions)"
        ) from None
    size = compiled.programsize
    if size > MAX_PROGRAM_SIZE:
        raise PatternError(
            f"pattern refused: it compiles to a program of {size:,} instructions, over "
            f"{MAX_PROGRAM_SIZE:,} (large counted repetitions such as .{{500}} make matching slow)"
        )
    return Pattern(source, ignore_case, compiled)
