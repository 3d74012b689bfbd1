"""One source's work for the one writer, and how the writer hands it to the store."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aggregator.engine.match import precomputed
from aggregator.model import FileChange, Item, Poll, SourceState
from aggregator.neardup import Sketch
from aggregator.store import IngestReport, SourceWrite, Store

__all__ = ["Write", "applier", "weigh"]


@dataclass(frozen=True, slots=True)
class Write:
    """One source's work for the writer: items, seed-file changes and/or its new state."""

    source: str
    now: datetime
    matchers: dict[str, Callable[[Item], bool]]
    items: tuple[Item, ...] = ()
    files: tuple[FileChange, ...] = ()
    state: SourceState | None = None
    #: topics the CPU stage matched, by ``id`` of this write's items
    matched: Mapping[int, frozenset[str]] = field(default_factory=dict)
    #: the CPU stage's dedup keys and near-duplicate sketches of ``items``, in order
    keys: tuple[tuple[str | None, str | None], ...] = ()
    sketches: tuple[Sketch | None, ...] = ()
    #: the poll recorded in the history with ``state``
    poll: Poll | None = None


def weigh(write: Write) -> int:
    return 1 + len(write.items) + sum(1 + len(c.items) for c in write.files)


def applier(store: Store) -> Callable[[Sequence[Write]], list[IngestReport]]:
    def apply(writes: Sequence[Write]) -> list[IngestReport]:
        # One store transaction per run of writes matched by the same topics
        # (a reload changes them between two runs).
        reports: list[IngestReport] = []
        for _, run in itertools.groupby(writes, key=lambda w: id(w.matchers)):
            group = list(run)
            reports += store.apply(
                [
                    SourceWrite(
                        w.source,
                        items=w.items,
                        files=w.files,
                        state=w.state,
                        now=w.now,
                        keys=w.keys,
                        sketches=w.sketches,
                        poll=w.poll,
                    )
                    for w in group
                ],
                now=max(w.now for w in group),
                matchers=precomputed(
                    group[0].matchers, {k: v for w in group for k, v in w.matched.items()}
                ),
            )
        return reports

    return apply
