"""When a permanent redirect may change a source's stored URL (pure).

A 301/308 moves the stored URL only after the *same* target has been seen on
``required`` consecutive polls, so one misconfigured deploy or a captive
portal cannot hijack a subscription. A poll that ends without a permanent
redirect (200 at the stored URL, or a 302/307 chain) resets the count; 302 and
307 never move it. When the move happens the caller stores ``new_location`` as
the source's URL and appends the old URL to the source's history.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MoveDecision", "decide_move"]


class MoveDecision(NamedTuple):
    """The outcome of one poll for the permanent-redirect state."""

    #: the URL to store now, or None to keep the current one
    new_location: str | None
    #: the pending target to remember (None once moved or reset)
    moved_to: str | None
    #: consecutive polls that saw ``moved_to``
    moved_seen: int


def decide_move(
    state_moved_to: str | None,
    state_moved_seen: int,
    observed: str | None,
    *,
    required: int = 3,
) -> MoveDecision:
    """Decide whether a permanent redirect now updates a source's URL.

    Args:
        state_moved_to: the pending target stored on the source, if any.
        state_moved_seen: how many consecutive polls saw ``state_moved_to``.
        observed: this poll's permanent-redirect target
            (``FetchResponse.permanent_redirect``), or None when the poll saw no
            permanent redirect (including 302/307 chains).
        required: consecutive sightings needed before the URL moves (>= 1).

    Returns:
        ``(new_location, moved_to, moved_seen)``: ``new_location`` is set only
        when the move is confirmed, and the pending state is then cleared.

    Raises:
        ValueError: if ``required`` is below 1.
    """
    if required < 1:
        raise ValueError(f"required must be at least 1, got {required}")
    if observed is None:
        return MoveDecision(None, None, 0)
    seen = state_moved_seen + 1 if observed == state_moved_to else 1
    if seen >= required:
        return MoveDecision(observed, None, 0)
    return MoveDecision(None, observed, seen)
