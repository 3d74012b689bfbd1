"""Dead feeds put to rest (pure): a source gone, or failing every poll for too long, is disabled.

After each poll of a URL source, :func:`laid_to_rest` decides from its new
state alone: a 410 Gone puts it to rest at once; a run of failed polls that
began ``disable_after`` ago or longer (no poll succeeded since) does too. A
source put to rest keeps its stories, is never polled again, and shows the
date and the reason in ``sources``, ``status`` and ``/status`` until
``aggregator enable`` brings it back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from aggregator.model import Outcome, SourceState

__all__ = ["failing_since", "laid_to_rest"]


def failing_since(previous: SourceState, outcome: Outcome, now: datetime) -> datetime | None:
    """When the run of failed polls that this poll continues (or ends) began; None: it ended."""
    if outcome not in (Outcome.ERROR, Outcome.GONE):
        return None
    return previous.failing_since or now


def _days(delta: timedelta) -> str:
    days = delta / timedelta(days=1)
    return f"{days:g} day{'s' if days != 1 else ''}" if days >= 1 else f"{delta}"


def laid_to_rest(
    state: SourceState, *, now: datetime, disable_after: timedelta | None
) -> SourceState:
    """The state with ``disabled_at`` and ``disabled_reason`` set when the source is dead.

    Args:
        state: the source's state after its latest poll (``failing_since``,
            ``gone`` and ``last_error`` up to date).
        now: the time of that poll.
        disable_after: how long a source may fail every poll; None: for ever
            (a 410 still puts it to rest).

    Returns:
        ``state`` itself when the source lives on (or was put to rest before).
    """
    if state.disabled_at is not None:
        return state
    if state.gone:
        reason = "gone: the server answered 410 Gone"
    elif (
        disable_after is not None
        and state.failing_since is not None
        and now - state.failing_since >= disable_after
    ):
        reason = f"failed every poll for {_days(now - state.failing_since)}"
        if state.last_error:
            reason += f"; last error: {state.last_error}"
    else:
        return state
    return replace(state, disabled_at=now, disabled_reason=reason)
