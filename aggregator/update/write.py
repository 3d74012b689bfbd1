"""One source's work for the one writer, and how the writer hands it to the store."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.model import FileChange, Item, Poll, RuleDrop, SourceState
from aggregator.records import ItemRecord
from aggregator.store import IngestReport, SourceWrite, Store

__all__ = ["Write", "applier", "weigh"]


@dataclass(frozen=True, slots=True)
class Write:
    """One source's work for the writer: items, seed-file changes and/or its new state.

    Every item goes with its record (keys, sketch, topics) from the CPU
    stage: the files' items first, then ``items``, in order.
    """

    source: str
    now: datetime
    matchers: dict[str, Callable[[Item], bool]]
    files: tuple[FileChange, ...] = ()
    state: SourceState | None = None
    #: each item with its dedup keys, near-duplicate sketch and topics
    records: tuple[ItemRecord, ...] = ()
    #: the poll recorded in the history with ``state``
    poll: Poll | None = None
    #: entries the source's rules dropped (counted, the last kept as examples)
    dropped: tuple[RuleDrop, ...] = ()

    @property
    def items(self) -> tuple[Item, ...]:
        """The items not of a file (a feed's)."""
        in_files = sum(len(c.items) for c in self.files)
        return tuple(r.item for r in self.records[in_files:])


def weigh(write: Write) -> int:
    return 1 + len(write.records) + len(write.files)


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
                        records=w.records,
                        poll=w.poll,
                    )
                    for w in group
                ],
                now=max(w.now for w in group),
                matchers=group[0].matchers,
            )
            for w in group:
                if w.dropped:
                    store.record_drops(w.source, w.dropped, now=w.now)
        return reports

    return apply
