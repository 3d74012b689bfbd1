"""Seed folders: stat, read and parse new and changed files in the workers, commit in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.errors import SeedFileError
from aggregator.model import FileChange, FileRecord, Outcome, SourceResult, SourceSpec, SourceState
from aggregator.sources import files as seedfiles
from aggregator.store import IngestReport
from aggregator.update.context import Context, Stages, stages_of
from aggregator.update.kinds import Attempt, Hints
from aggregator.update.write import Write

if TYPE_CHECKING:
    from aggregator.engine.digests import SeedDigest

__all__ = ["FILE_BATCH", "SeedFolders"]

#: seed files applied per transaction: bounds both memory and the work a crash can lose
FILE_BATCH = 200


class SeedFolders:
    """The updater of a folder of local seed files (``path:`` in the config)."""

    remote = False

    def lane(self, spec: SourceSpec) -> str | None:
        return None

    def watched(self, spec: SourceSpec) -> Path | None:
        return Path(spec.location)

    async def update(
        self, spec: SourceSpec, ctx: Context, *, now: datetime, state: SourceState, write: Write
    ) -> Attempt:
        result, final, read = await _update_files(spec, ctx, now, write)
        # A file's problems stay on the source until the file is read again
        # (or goes): an unchanged file is not even opened.
        present, reread = read
        kept = [
            p
            for p in state.problems
            if (f := _problem_file(spec, p)) in present and f not in reread
        ]
        state = replace(state, problems=(*kept, *result.problems))
        return Attempt(result, state, Hints(), final)


def _problem_file(spec: SourceSpec, problem: str) -> str | None:
    """The seed file a problem line names (``source: relpath: reason``), if any."""
    prefix = f"{spec.name}: "
    if not problem.startswith(prefix):
        return None
    relpath, sep, _reason = problem.removeprefix(prefix).partition(": ")
    return relpath if sep else None


async def _update_files(
    spec: SourceSpec, ctx: Context, now: datetime, final: Write
) -> tuple[SourceResult, Write, tuple[frozenset[str], frozenset[str]]]:
    """Stat the folder, digest new and changed files in the pool, commit them in batches.

    Returns the result so far and the final write (deletions, and the state
    that the caller adds), which the caller commits after every addition;
    and the files present and those read by this pass.
    """
    stages = stages_of(ctx)
    root = Path(spec.location)
    if not await asyncio.to_thread(root.is_dir):
        raise SeedFileError(spec.name, str(root), "seed folder not found")
    (stats, scan_errors), known = await asyncio.gather(
        asyncio.to_thread(seedfiles.scan, root, source=spec.name),
        asyncio.to_thread(ctx.store.file_stats, spec.name),
    )
    problems = [str(e) for e in scan_errors]
    # A folder that could not be listed is not an empty one: its files are kept.
    unseen = [e.path for e in scan_errors if e.unseen]
    # New or changed by size and mtime; the others are not even opened.
    fresh = [st for st in stats if known.get(st.relpath) != (st.size, st.mtime_ns)]
    records, claimed = await asyncio.to_thread(_records, ctx, spec, stats, fresh, known, unseen)
    changed = [(st, records.get(st.relpath)) for st in fresh]
    chunks = [changed[i : i + FILE_BATCH] for i in range(0, len(changed), FILE_BATCH)]
    # Chunks are digested in parallel and committed as each is ready, one
    # transaction per chunk at most: a crash loses at most the chunks in flight,
    # which the next pass reads again because their records were not written.
    done = await asyncio.gather(*(_digest_and_commit(spec, ctx, stages, now, c) for c in chunks))
    report = IngestReport()
    touched = 0
    for digest, chunk_report in done:
        report += chunk_report
        touched += digest.touched
        problems.extend(digest.problems)
        for change in digest.changes:
            if change.record is not None:
                claimed.update(change.record.identities)
    # Deletions go in the last write, after every addition: a renamed file has
    # joined its story by content before the old name's entry is removed.
    deletions = _deletions(stats, records, claimed, unseen)
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.OK,
        new=report.new + report.merged,
        merged=report.merged,
        updated=report.updated,
        unchanged=len(stats) - touched + report.unchanged,
        removed=report.removed,
        problems=tuple(problems),
        dirty_topics=report.dirty_topics,
    )
    read = (frozenset(st.relpath for st in stats), frozenset(st.relpath for st, _ in changed))
    return result, replace(final, now=ctx.clock(), files=deletions), read


def _records(
    ctx: Context,
    spec: SourceSpec,
    stats: Sequence[seedfiles.FileStat],
    fresh: Sequence[seedfiles.FileStat],
    known: Mapping[str, tuple[int, int]],
    unseen: Sequence[str],
) -> tuple[dict[str, FileRecord], set[str]]:
    """The records a pass needs, and the identities the files it will not read yield.

    A pass reads the records of the ``fresh`` files (new or changed); only
    when a file went (or a folder could not be listed) does it read them all,
    for the identities the present files still yield: a deleted (or renamed)
    file's entries are removed only when no present file yields them, as a
    NNN_<hash> file renamed to another prefix does. So a new file in a folder
    of thousands costs a scan and the stored sizes, not every record.
    """
    present = {st.relpath for st in stats}
    if not unseen and present.issuperset(known):
        changed = [st.relpath for st in fresh if st.relpath in known]
        return ctx.store.file_records(spec.name, changed), set()
    records = ctx.store.file_records(spec.name)
    unchanged = present.difference(st.relpath for st in fresh)
    claimed: set[str] = set()
    for relpath, rec in records.items():
        if relpath in unchanged or (unseen and seedfiles.under(relpath, unseen)):
            claimed.update(rec.identities)
    return records, claimed


async def _digest_and_commit(
    spec: SourceSpec,
    ctx: Context,
    stages: Stages,
    now: datetime,
    chunk: Sequence[tuple[seedfiles.FileStat, FileRecord | None]],
) -> tuple[SeedDigest, IngestReport]:
    """One chunk of files read and parsed in the workers, then committed by the writer."""
    digest: SeedDigest = await stages.pool.run(
        spec.name,
        "aggregator.engine.work:digest_seed_files",
        spec,
        chunk,
        now=now,
        topics=ctx.config.topics,
        near=ctx.config.dedup,
    )
    write = Write(
        source=spec.name,
        now=ctx.clock(),
        matchers=ctx.matchers,
        files=digest.changes,
        records=digest.records,
        dropped=digest.dropped,
    )
    return digest, await stages.writer.submit(write)


def _deletions(
    stats: Sequence[seedfiles.FileStat],
    records: Mapping[str, FileRecord],
    claimed: set[str],
    unseen: Sequence[str] = (),
) -> tuple[FileChange, ...]:
    """A change per file gone from the folder: its identities no present file yields.

    A file under an ``unseen`` path (a folder that could not be listed) is not gone.
    """
    present = {s.relpath for s in stats}
    return tuple(
        FileChange(
            relpath=relpath,
            record=None,
            removed=tuple(i for i in rec.identities if i not in claimed),
        )
        for relpath, rec in sorted(records.items())
        if relpath not in present and not (unseen and seedfiles.under(relpath, unseen))
    )
