"""When to poll a source next: interval, jitter, backoff, Retry-After, cache hints.

Everything here is pure: no clock, no I/O, ``now`` is an argument. The one
decision, :func:`next_due`, turns the outcome of an update plus the hints the
server gave into the next due time; the ``parse_*`` helpers read those hints
from response headers.

Policy, in order:

1. ``GONE`` (410) stops polling: the result is :data:`NEVER`.
2. ``ERROR`` backs off exponentially, ``interval * 2**(failures - 1)``, capped at
   ``max_backoff`` (but never shorter than ``interval``: an error never makes us
   poll more often than success would). Cache hints are ignored on errors.
3. ``OK`` / ``NOT_MODIFIED`` use ``interval``; ``Cache-Control: max-age``,
   ``Expires`` and RSS ``<ttl>`` may *lengthen* it, up to ``max_interval``.
   They never shorten it.
4. The delay is at least ``min_interval``, then lengthened by a deterministic
   jitter of up to ``jitter`` (a fraction), derived from ``seed`` and the minute
   of ``now`` so that sources with the same interval spread out and tests are
   reproducible. Jitter only ever adds, so no floor above is undercut.
5. ``Retry-After`` is a floor: never earlier than it, but no later than
   ``now + max_backoff`` (a server cannot park a source for a year).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.model import Outcome, utc

__all__ = [
    "NEVER",
    "catch_up_allowance",
    "next_due",
    "parse_cache_control",
    "parse_expires",
    "parse_http_date",
    "parse_retry_after",
]

#: "Do not poll again" (returned for 410 Gone): the largest aware datetime.
NEVER = datetime.max.replace(tzinfo=UTC)

# A server-given delay longer than this is treated as this; it keeps timedelta
# arithmetic far from overflow whatever digits a header carries.
_LONGEST_HINT = timedelta(days=3650)
_MAX_AGE = re.compile(r'(?:^|[,\s])max-age\s*=\s*"?(\d+)"?\s*(?:[,;]|$)', re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-store|no-cache)(?:\s*[,=]|\s*$)", re.IGNORECASE)


def next_due(
    *,
    now: datetime,
    interval: timedelta,
    outcome: Outcome,
    consecutive_failures: int,
    retry_after: datetime | None = None,
    cache_max_age: timedelta | None = None,
    expires: datetime | None = None,
    ttl: timedelta | None = None,
    min_interval: timedelta = timedelta(minutes=5),
    max_interval: timedelta = timedelta(hours=24),
    max_backoff: timedelta = timedelta(hours=24),
    jitter: float = 0.1,
    seed: str = "",
) -> datetime:
    """Return when a source should next be polled.

    Args:
        now: the time of the update just finished (aware).
        interval: the source's configured polling interval.
        outcome: how the update ended.
        consecutive_failures: failures in a row, counting this one (used on ERROR;
            0 is read as 1).
        retry_after: the server's ``Retry-After``, as an absolute time.
        cache_max_age: ``Cache-Control: max-age`` of the response.
        expires: the response's ``Expires`` time.
        ttl: the feed's RSS ``<ttl>``.
        min_interval: the shortest delay ever returned (jitter aside).
        max_interval: how far cache hints may lengthen the interval.
        max_backoff: cap of the error backoff and of ``retry_after``.
        jitter: the largest extra delay, as a fraction of the delay (0 disables).
        seed: makes the jitter differ between sources (use the source name).

    Returns:
        An aware UTC datetime, or :data:`NEVER` for ``Outcome.GONE``.

    Raises:
        ValueError: for a naive ``now``/``retry_after``/``expires``, a
            non-positive ``interval`` or a ``jitter`` outside [0, 1].
    """
    now = utc(now)
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")
    if outcome is Outcome.GONE:
        return NEVER

    if outcome is Outcome.ERROR:
        exponent = max(consecutive_failures, 1) - 1
        cap = max(max_backoff, interval)
        # Compare in seconds before multiplying the timedelta: 30 minutes
        # times 2**36 is past timedelta's range (a source failing 37 times in
        # a row), 2**1000 past a float's.
        if exponent >= 62 or interval.total_seconds() * 2**exponent >= cap.total_seconds():
            delay = cap
        else:
            delay = interval * (2**exponent)
    else:
        delay = interval
        hints = [h for h in (cache_max_age, ttl) if h is not None]
        if expires is not None:
            hints.append(utc(expires) - now)
        for hint in hints:
            # Hints lengthen up to max_interval; a configured interval above
            # max_interval is the user's explicit choice and is kept.
            if hint > delay:
                delay = max(delay, min(hint, max_interval))

    delay = min(max(delay, min_interval), _LONGEST_HINT)
    due = now + delay * (1.0 + jitter * _unit_fraction(seed, now))
    if retry_after is not None:
        floor = min(utc(retry_after), now + max_backoff)
        due = max(due, floor)
    return due


def _unit_fraction(seed: str, now: datetime) -> float:
    """Return a number in [0, 1) fixed by ``seed`` and the minute of ``now``."""
    bucket = int(now.timestamp() // 60)
    digest = hashlib.sha256(f"{seed}\x00{bucket}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def catch_up_allowance(
    overdue: int,
    *,
    elapsed: timedelta,
    rate: float,
    longest: timedelta,
) -> int:
    """How many of the sources overdue at start may have started ``elapsed`` after it.

    Overdue sources are due at once, but not all in one burst: at most ``rate``
    start per second, the first second's share at once (a handful start
    immediately). The pace rises above ``rate`` only as far as needed to start
    them all within ``longest``.

    Args:
        overdue: sources never polled or past their due time when the daemon started.
        elapsed: time since the start (not negative).
        rate: sources per second to aim for (> 0).
        longest: the longest the catch-up may take, whatever the number of sources.

    Returns:
        The number that may have started by now, at most ``overdue``.
    """
    if overdue <= 0:
        return 0
    pace = max(rate, overdue / max(longest.total_seconds(), 1.0))
    return min(overdue, math.ceil(pace * (max(elapsed.total_seconds(), 0.0) + 1.0)))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Return a header's value, looking the name up case-insensitively."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_http_date(value: str) -> datetime | None:
    """Parse an HTTP-date (RFC 1123, RFC 850 or asctime form) into aware UTC.

    Args:
        value: the header value.

    Returns:
        The time, or None when ``value`` is not a date. A date without a zone
        (asctime form) is read as UTC, as HTTP requires.
    """
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_cache_control(headers: Mapping[str, str]) -> timedelta | None:
    """Return ``Cache-Control: max-age`` as a delay, or None.

    ``no-store``/``no-cache`` or a missing or malformed ``max-age`` give None
    (no hint). ``s-maxage`` is for shared caches and is ignored.

    Args:
        headers: response headers (names matched case-insensitively).

    Returns:
        The max-age, at most ten years, or None.
    """
    value = _header(headers, "cache-control")
    if not value or _NO_CACHE.search(value):
        return None
    match = _MAX_AGE.search(value)
    if match is None:
        return None
    return min(timedelta(seconds=int(match.group(1)[:12])), _LONGEST_HINT)


def parse_expires(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """Return how far ahead of ``now`` the response's ``Expires`` lies, or None.

    An invalid date (``0``, ``-1``...) means "already expired" in HTTP, so it
    gives None, as does a date not after ``now``.

    Args:
        headers: response headers (names matched case-insensitively).
        now: the time the response was received.

    Returns:
        A positive delay, at most ten years, or None.
    """
    value = _header(headers, "expires")
    if not value:
        return None
    when = parse_http_date(value)
    if when is None:
        return None
    delta = when - utc(now)
    if delta <= timedelta(0):
        return None
    return min(delta, _LONGEST_HINT)


def parse_retry_after(value: str, now: datetime) -> datetime | None:
    """Read a ``Retry-After`` value (delay seconds or HTTP-date) as an absolute time.

    Args:
        value: the header value, e.g. ``"120"`` or ``"Wed, 21 Oct 2015 07:28:00 GMT"``.
        now: the time the response was received.

    Returns:
        The earliest time to retry (possibly in the past for a stale date), or
        None when the value is neither form. Delays beyond ten years are cut.
    """
    text = value.strip()
    if not text:
        return None
    if _DIGITS.fullmatch(text):
        seconds = min(int(text[:12]), int(_LONGEST_HINT.total_seconds()))
        return utc(now) + timedelta(seconds=seconds)
    return parse_http_date(text)
