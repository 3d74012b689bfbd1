"""The seam per source kind: a :class:`SourceUpdater` for each, found by the source's ``kind``.

A new kind of source is one module with its updater and one
:func:`register` line (in :mod:`aggregator.update`); nothing else asks what
kind a source is. Also here: what a config's sources need of a long-lived
process (an HTTP client, modules imported before it serves).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aggregator.model import SourceResult, SourceSpec, SourceState

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.update.context import Context
    from aggregator.update.write import Write

__all__ = [
    "Attempt",
    "Hints",
    "SourceUpdater",
    "any_remote",
    "needs_fetcher",
    "preload",
    "register",
    "updater_for",
    "watched_folders",
]


@dataclass(frozen=True, slots=True)
class Hints:
    """What a response says about when to poll again."""

    retry_after: datetime | None = None
    cache_max_age: timedelta | None = None
    expires: datetime | None = None
    ttl: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one update of a source found, before its state is scheduled and written."""

    result: SourceResult
    #: the source's state as the update left it (validators, location, ...)
    state: SourceState
    #: the hints for the next poll
    hints: Hints
    #: the last write, which the caller commits with the new state
    write: Write


class SourceUpdater(Protocol):
    """How sources of one kind are updated."""

    #: whether its updates fetch through the shared HTTP fetcher
    remote: bool

    def lane(self, spec: SourceSpec) -> str | None:
        """The key (a host) its updates queue behind; None: no lane."""
        ...

    def watched(self, spec: SourceSpec) -> Path | None:
        """The local folder whose changes should trigger an update; None: none."""
        ...

    async def update(
        self, spec: SourceSpec, ctx: Context, *, now: datetime, state: SourceState, write: Write
    ) -> Attempt:
        """Update the source: what it found and the write to commit with its state.

        Raises:
            AggregatorError: a problem of the source (recorded as its failure).
        """
        ...


_UPDATERS: dict[str, SourceUpdater] = {}


def register(kind: str, updater: SourceUpdater) -> None:
    """Make ``updater`` update every source of ``kind`` (replacing any before it)."""
    _UPDATERS[kind] = updater


def updater_for(spec: SourceSpec) -> SourceUpdater:
    """The updater of the source's kind.

    Raises:
        KeyError: no updater is registered for that kind.
    """
    try:
        return _UPDATERS[spec.kind]
    except KeyError:
        raise KeyError(f"{spec.name}: no updater for sources of kind {spec.kind!r}") from None


def any_remote(specs: Iterable[SourceSpec]) -> bool:
    """Whether any of these sources fetches over HTTP."""
    return any(updater_for(s).remote for s in specs)


def watched_folders(specs: Iterable[SourceSpec]) -> dict[str, Path]:
    """Source name -> the local folder watched for it, for the enabled sources that have one."""
    found = {s.name: updater_for(s).watched(s) for s in specs if s.enabled}
    return {name: folder for name, folder in found.items() if folder is not None}


def needs_fetcher(config: Config) -> bool:
    """Whether a process on ``config`` fetches over HTTP: a remote source or a webhook."""
    return any_remote(config.sources) or any(topic.notify for topic in config.topics)


def preload(config: Config) -> None:
    """Import now what the pipeline imports on first use in this process, for ``config``.

    A one-shot command pays for them only when a source needs them; a process
    that answers HTTP calls this before it serves, so its first polls never
    import on its event loop (a reload calls it again, off the loop, for
    what a new source needs). The parsers, discovery (bs4) and the
    renderers are not among them: they run in the CPU stage's workers and
    are called by name, so this process never imports them. Seed folders
    alone need no HTTP client: httpx is not imported for them, nor its CA
    bundle loaded.
    """
    if needs_fetcher(config):
        import aggregator.sources.http
        from aggregator.sources.pinning import ssl_context

        ssl_context()  # the CA bundle: 25-65 ms of CPU the first fetch would spend on the loop
    if any(spec.full_content is not None for spec in config.sources):
        import aggregator.engine.pages  # noqa: F401
