"""Descriptors of a serving process: raise the soft limit, keep a reserve, cap connections.

Every client connection holds a descriptor, and so do the store (the SQLite
file, its WAL and shared memory, per connection), a seed scan (a folder and
each path component it opens on the way to a file), publishing (a temp file
and its gzip copy), feed fetches, the worker pool's pipes and the log. When
clients take them all, the rest of the daemon fails in ways that look like
something else (a folder that "cannot be listed", a database that "cannot be
opened"): so connections get what is left after a reserve for everything else,
and the server closes idle connections beyond that (``web.server._GuardedProtocol``).
``docs/security.md`` has the table.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

__all__ = ["RESERVE", "FdBudget", "budget", "raise_soft_limit"]

#: descriptors kept for everything but client connections and fetches: the store
#: (a few per pooled connection), seed scans, publishing, the worker pool's pipes,
#: the log, the event loop and the config and seed watchers (the budget adds the
#: fetcher's connections and the connections accepted but not yet checked)
RESERVE = 128
#: the soft limit is raised to the hard limit, but no further than this
TARGET_LIMIT = 65536
#: connections are capped here however high the limit (each costs memory too)
MAX_CONNECTIONS = 8192
#: and never below this, even under a tiny limit
MIN_CONNECTIONS = 16


@dataclass(frozen=True, slots=True)
class FdBudget:
    """How the process's descriptors are shared out."""

    #: the soft ``RLIMIT_NOFILE``
    limit: int
    #: kept for the store, seed scans, publishing, the pool and the fetches
    reserve: int
    #: client connections the server holds at most
    connections: int


def budget(limit: int, fetch_connections: int, accept_in_flight: int) -> FdBudget:
    """Share ``limit`` descriptors out (pure).

    Args:
        limit: the soft ``RLIMIT_NOFILE``.
        fetch_connections: outgoing connections the fetcher may hold (``fetch.max_connections``).
        accept_in_flight: connections the event loop may have accepted before the
            server sees them and closes any (``web.ACCEPT_IN_FLIGHT``).

    Returns:
        The budget: ``reserve`` for everything else, the rest (capped) for connections.
    """
    reserve = RESERVE + fetch_connections + accept_in_flight
    connections = min(MAX_CONNECTIONS, max(MIN_CONNECTIONS, limit - reserve))
    return FdBudget(limit=limit, reserve=reserve, connections=connections)


def raise_soft_limit(target: int = TARGET_LIMIT) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards the hard limit (at most ``target``).

    A service manager's default soft limit is often 1,024 while the hard limit
    is far higher; raising the soft one needs no privilege.

    Returns:
        The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # a sandbox may refuse: the budget follows the limit we have
    return soft if soft != resource.RLIM_INFINITY else target
