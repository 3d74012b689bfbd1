"""What the CPU stage runs: bytes or seed files in, normalised items out.

Every function here is a top-level function of picklable values, run in a
worker process (or a thread) by :class:`~aggregator.engine.pool.CpuPool`. None
touches the store or the network.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aggregator.engine.digests import FeedDigest, SeedDigest
from aggregator.engine.match import build_matchers, matched_topics, split_by_rules
from aggregator.engine.sketches import sketch_of
from aggregator.errors import SeedFileError
from aggregator.model import (
    FileChange,
    FileRecord,
    Item,
    NearDupSettings,
    Origin,
    ParsedDocument,
    RawEntry,
    RuleDrop,
    SourceSpec,
    TopicSpec,
)
from aggregator.normalise import normalise_entry
from aggregator.parse import parse_feed, parse_seed
from aggregator.records import ItemRecord
from aggregator.sources import files as seedfiles
from aggregator.stories import dedup

__all__ = [
    "UNREAD_MTIME",
    "FeedDigest",
    "SeedDigest",
    "digest_feed",
    "digest_seed_files",
    "finish_digest",
    "normalise_all",
    "read_feed",
]

log = logging.getLogger(__name__)


def normalise_all(
    entries: Sequence[RawEntry], spec: SourceSpec, origin: Origin, now: datetime
) -> tuple[list[Item], list[str]]:
    """Normalise a document's entries; an entry that cannot be an item is a note, not a failure."""
    items: list[Item] = []
    notes: list[str] = []
    for raw in entries:
        try:
            items.append(
                normalise_entry(raw, source=spec.name, origin=origin, extra_tags=spec.tags, now=now)
            )
        except ValueError as exc:
            notes.append(f"entry skipped: {exc}")
    return items, notes


def digest_feed(
    body: bytes,
    *,
    spec: SourceSpec,
    url: str,
    headers: Mapping[str, str],
    now: datetime,
    fast: bool = True,
    topics: Sequence[TopicSpec] = (),
    near: NearDupSettings | None = None,
) -> FeedDigest:
    """Parse a fetched feed and normalise its entries.

    Args:
        body: the response body.
        spec: the configured source.
        url: the final URL (base for relative links; the feed's id when it has none).
        headers: the response headers (charset, content location).
        now: the time of the update.
        fast: let the strict fast parser take the documents it can.
        topics: the configured topics, matched here against every item.
        near: the ``dedup:`` settings; their sketches are computed here too.

    Returns:
        The items and the problems that did not fail the source.

    Raises:
        ParseError: the body is not a feed.
    """
    digest = read_feed(body, spec=spec, url=url, headers=headers, now=now, fast=fast)
    return finish_digest(digest, now=now, topics=topics, near=near)


def read_feed(
    body: bytes,
    *,
    spec: SourceSpec,
    url: str,
    headers: Mapping[str, str],
    now: datetime,
    fast: bool = True,
) -> FeedDigest:
    """Parse a fetched feed and normalise its entries, without topics, keys or sketches.

    The first half of :func:`digest_feed`, for a caller that changes the
    items before :func:`finish_digest` (``full_content`` swaps in articles).

    Raises:
        ParseError: the body is not a feed.
    """
    doc = parse_feed(body, url=url, headers=dict(headers), source=spec.name, fast=fast)
    origin = Origin(
        source=spec.name,
        title=spec.title or doc.feed.title or spec.name,
        link=doc.feed.link or url,
        feed_id=doc.feed.feed_id or url,
    )
    items, notes = normalise_all(doc.entries, spec, origin, now)
    items, dropped = split_by_rules(items, spec.rules, now=now)
    problems = [f"{spec.name}: {w}" for w in doc.warnings]
    problems += [f"{spec.name}: {n}" for n in notes]
    records = tuple(ItemRecord(item) for item in items)
    return FeedDigest(
        records,
        tuple(problems),
        doc.feed.title,
        doc.feed.ttl,
        fast_path=doc.fast_path,
        hub=doc.feed.hub,
        self_url=doc.feed.self_url,
        dropped=tuple(dropped),
    )


def finish_digest(
    digest: FeedDigest,
    *,
    now: datetime,
    topics: Sequence[TopicSpec] = (),
    near: NearDupSettings | None = None,
    settled: Collection[int] = (),
) -> FeedDigest:
    """Add the topics each item matches, its dedup keys and its near-duplicate sketch.

    ``settled`` are indexes of items the store holds with the same content
    hash: the store leaves those unchanged without looking at their keys or
    sketch, so none is computed, and their topics are None (the store's
    predicates would match them themselves, were they ever asked).
    """
    skip = set(settled)
    matchers = build_matchers(topics, clock=lambda: now)
    names = frozenset(matchers.keys())
    near_on = near if near is not None and near.enabled else None
    records: list[ItemRecord] = []
    # One item at a time: its body's text and tokens, cached for a few
    # texts, serve its topic document, its content key and its sketch.
    for i, record in enumerate(digest.records):
        item = record.item
        if i in skip:
            records.append(ItemRecord(item, keys=(None, None)))
            continue
        records.append(
            ItemRecord(
                item,
                keys=(dedup.link_key(item), dedup.content_key(item)),
                sketch=sketch_of(item, near_on) if near_on is not None else None,
                topics=matchers.matching_many((item,), names)[0],
            )
        )
    return replace(digest, records=tuple(records))


def _origin_for(spec: SourceSpec, doc: ParsedDocument) -> Origin:
    feed = doc.feed
    if feed.feed_id or feed.link:
        # A feed file: its entries keep naming the feed they came from.
        return Origin(
            source=spec.name,
            title=feed.title or spec.title or spec.name,
            link=feed.link,
            feed_id=feed.feed_id,
        )
    return Origin(source=spec.name, title=spec.title or spec.name)


#: the mtime recorded for a seed file that could not be read: no file has it,
#: so the next pass tries the file again
UNREAD_MTIME = -1


def digest_seed_files(
    spec: SourceSpec,
    files: Sequence[tuple[seedfiles.FileStat, FileRecord | None]],
    *,
    now: datetime,
    topics: Sequence[TopicSpec] = (),
    near: NearDupSettings | None = None,
) -> SeedDigest:
    """Read, parse and normalise new or changed seed files of one folder.

    Args:
        spec: the seed folder's source.
        files: each file's stat and what the store remembers of it.
        now: the time of the update.
        topics: the configured topics, matched here against every item.
        near: near-duplicate settings: each item's sketch is made here, so the
            writer (in the daemon's process) never does that CPU work.

    Returns:
        One change per file (its new record, items and removed identities)
        and one problem line per file that had any.
    """
    root = Path(spec.location)
    problems: list[str] = []
    changes: list[FileChange] = []
    dropped: list[RuleDrop] = []
    touched = 0
    for stat, old in files:
        change = _read_seed_file(spec, root, stat, old, now, problems, dropped)
        changes.append(change)
        if not _only_touched(change, old):
            touched += 1
    items = [item for change in changes for item in change.items]
    near_on = near if near is not None and near.enabled else None
    records = tuple(
        ItemRecord(
            item,
            keys=(dedup.link_key(item), dedup.content_key(item)),
            sketch=sketch_of(item, near_on) if near_on is not None else None,
            topics=names,
        )
        for item, names in zip(items, matched_topics(items, topics, now), strict=True)
    )
    return SeedDigest(tuple(changes), tuple(problems), touched, records, tuple(dropped))


def _only_touched(change: FileChange, old: FileRecord | None) -> bool:
    """The file's mtime moved but its bytes did not: it counts as unchanged."""
    rec = change.record
    return (
        old is not None
        and rec is not None
        and not (change.items or change.removed)
        and rec.error is None
        and rec.content_hash == old.content_hash
    )


def _read_seed_file(
    spec: SourceSpec,
    root: Path,
    stat: seedfiles.FileStat,
    old: FileRecord | None,
    now: datetime,
    problems: list[str],
    dropped: list[RuleDrop],
) -> FileChange:
    """Read, parse and normalise one new or changed seed file.

    Every problem of the file (read or parse error, decoding notes, skipped
    entries) is reported as one line naming it.
    """
    kept = old.identities if old else ()
    try:
        data = seedfiles.read_seed(root, stat.relpath, source=spec.name, max_bytes=spec.max_bytes)
    except SeedFileError as exc:
        problems.append(str(exc))
        # Keep what the file gave before; retry when size or mtime change, or
        # on every pass when it could not be read at all (a chmod that makes it
        # readable again changes no mtime).
        return FileChange(
            stat.relpath,
            FileRecord(
                stat.relpath,
                stat.size,
                UNREAD_MTIME if exc.unseen else stat.mtime_ns,
                old.content_hash if old else None,
                kept,
                str(exc),
            ),
        )
    digest = hashlib.sha256(data).hexdigest()
    if old is not None and old.content_hash == digest and old.error is None:
        # Touched but not changed: remember the new mtime, ingest nothing.
        return FileChange(stat.relpath, replace(old, size=stat.size, mtime_ns=stat.mtime_ns))
    mtime = datetime.fromtimestamp(stat.mtime_ns / 1e9, UTC)
    try:
        doc = parse_seed(stat.relpath, data, source=spec.name, mtime=mtime, now=now)
    except SeedFileError as exc:
        problems.append(str(exc))
        return FileChange(
            stat.relpath, FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, kept, str(exc))
        )
    except Exception as exc:  # a parser bug on one file must not stop the folder
        log.exception("%s: %s: unexpected error while parsing", spec.name, stat.relpath)
        kind = type(exc)
        name = (
            kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        )
        reason = f"{spec.name}: {stat.relpath}: unexpected {name} while parsing: {exc}"
        problems.append(reason)
        return FileChange(
            stat.relpath, FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, kept, reason)
        )
    # Parsers name the file in their warnings already: name it once.
    prefix = f"{stat.relpath}: "
    notes = [w.removeprefix(prefix) for w in doc.warnings]
    items, skipped = normalise_all(doc.entries, spec, _origin_for(spec, doc), now)
    items, dropped_here = split_by_rules(items, spec.rules, now=now)
    dropped += dropped_here
    notes += skipped
    if notes:
        problems.append(f"{spec.name}: {stat.relpath}: {'; '.join(notes)}")
    identities = tuple(dict.fromkeys(i.identity for i in items))
    removed = tuple(i for i in kept if i not in identities)
    return FileChange(
        stat.relpath,
        FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, identities, None),
        items=tuple(items),
        removed=removed,
    )
