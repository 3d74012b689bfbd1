"""Seed folders through the real pipeline: what is re-read, what changes, what is reported.

Each test builds a config with one ``path:`` source and a few topics, opens
the real context (SQLite file store) and runs ``update_source`` as the daemon
does. Reads are counted at two levels: calls to ``read_seed`` as the pipeline
looks it up, and ``open``/``os.open`` on any file under the seeds folder.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import os
import shutil
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import load_config
from aggregator.engine import work
from aggregator.model import Outcome, ParsedDocument, SourceResult, SourceSpec, Story
from aggregator.parse import parse_seed
from aggregator.sources import files as seedfiles
from aggregator.update import Context, open_context, update_source

#: a little ahead of the wall clock: files written without an explicit mtime are in the past
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
FRONT = (NOW - timedelta(days=7)).replace(minute=30, second=0)
INLINE = (NOW - timedelta(days=6)).replace(minute=5, second=0)

TOPICS = """
topics:
  - {name: karabakh, title: Nagorno-Karabakh, query: Nagorno-Karabakh}
  - {name: jcpoa, title: JCPOA, query: JCPOA}
  - {name: glaciers, title: Glaciers, query: glacier}
  - {name: everything, title: Everything, query: 'a OR the OR of OR and OR to OR in'}
"""


class Clock:
    """A clock the test moves; every update sees a later time."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = timedelta(minutes=5)) -> datetime:
        self.now += delta
        return self.now


@dataclass
class Seeds:
    """A workspace: the seeds folder, the opened context and a movable clock."""

    root: Path
    ctx: Context
    clock: Clock
    spec: SourceSpec
    reads: list[str] = field(default_factory=list)

    def update(self) -> SourceResult:
        self.clock.advance()
        result = asyncio.run(update_source(self.spec, self.ctx))
        assert result.outcome is Outcome.OK, result.error
        return result

    def stories(self, topic: str = "everything") -> dict[str, Story]:
        return {s.item.title: s for s in self.ctx.store.topic_stories(topic)}


@pytest.fixture
def seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeds]:
    root = tmp_path / "seeds"
    root.mkdir()
    config = tmp_path / "aggregator.yaml"
    # The read counter below patches this process: the CPU stage runs in its
    # threads here (test_engine shows the worker processes give the same results).
    config.write_text(
        "data_dir: data\ningest: {workers: 0}\n"
        "sources:\n  - {name: seeds, path: seeds, max_bytes: 64KiB}\n" + TOPICS,
        encoding="utf-8",
    )
    clock = Clock()
    ctx = open_context(load_config(config), clock=clock)
    workspace = Seeds(root=root, ctx=ctx, clock=clock, spec=ctx.config.sources[0])
    # The pipeline calls ``seedfiles.read_seed`` through the module: patch it there.
    real_read = seedfiles.read_seed

    def counting_read(root: Path, relpath: str, *, source: str, max_bytes: int) -> bytes:
        workspace.reads.append(relpath)
        return real_read(root, relpath, source=source, max_bytes=max_bytes)

    monkeypatch.setattr(seedfiles, "read_seed", counting_read)
    try:
        yield workspace
    finally:
        ctx.close()


def article(n: int, *, topic: str = "glacier", extra: str = "") -> str:
    """A plain-text seed article, distinct per ``n``."""
    return (
        f"Survey {n} finds the {topic} retreat is faster than thought\n\n"
        f"Tbilisi (GT): Researchers of team {n} measured the {topic} front at {n * 7} points "
        f"and report a loss of {n % 90 + 3} metres in one season.{extra}\n\n"
        f"The work of expedition {n} is to continue next summer, the institute said.\n"
    )


def write(path: Path, text: str | bytes, *, mtime: datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


@pytest.fixture
def opened(seeds: Seeds, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Files under the seeds folder opened with ``open``/``io.open``/``os.open`` from now on."""
    seen: list[str] = []
    root = str(seeds.root.resolve())
    real_os_open = os.open

    def watch(real: Callable[..., Any]) -> Callable[..., Any]:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)):
                name = os.fspath(file)
                dir_fd = kwargs.get("dir_fd")
                if dir_fd is not None:
                    # read_seed opens each path component relative to the last.
                    name = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)
                flags = args[0] if args else kwargs.get("flags", 0)
                folder = real is real_os_open and flags & os.O_DIRECTORY
                path = os.path.abspath(name)
                if path.startswith(root + os.sep) and not folder:
                    seen.append(path)
            return real(file, *args, **kwargs)

        return opener

    monkeypatch.setattr(builtins, "open", watch(builtins.open))
    monkeypatch.setattr(io, "open", watch(io.open))
    monkeypatch.setattr(os, "open", watch(os.open))
    return seen


# -- unchanged files are not read ----------------------------------------------


def test_unchanged_folder_of_1000_seeds_reads_no_file(seeds: Seeds, opened: list[str]) -> None:
    for n in range(1000):
        write(seeds.root / f"batch{n // 100}" / f"story-{n:04d}.txt", article(n))
    opened.clear()  # the writes above

    first = seeds.update()
    assert first.new == 1000 and first.problems == ()
    assert sorted(seeds.reads) == sorted(
        f"batch{n // 100}/story-{n:04d}.txt" for n in range(1000)
    ), "the first pass reads each file exactly once"
    assert len(opened) == 1000
    assert len(seeds.stories()) == 1000

    seeds.reads.clear()
    opened.clear()
    second = seeds.update()
    assert seeds.reads == [] and opened == [], "an unchanged file must not be opened"
    assert (second.new, second.updated, second.removed, second.unchanged) == (0, 0, 0, 1000)
    assert second.dirty_topics == frozenset()


def test_touched_file_is_read_once_and_ingests_nothing(seeds: Seeds) -> None:
    path = write(seeds.root / "story.txt", article(1), mtime=NOW - timedelta(days=1))
    write(seeds.root / "other.txt", article(2), mtime=NOW - timedelta(days=1))
    seeds.update()
    before = seeds.stories()

    os.utime(path, ((NOW - timedelta(hours=1)).timestamp(),) * 2)
    seeds.reads.clear()
    result = seeds.update()
    assert seeds.reads == ["story.txt"]
    assert (result.new, result.updated, result.removed, result.unchanged) == (0, 0, 0, 2)
    assert result.dirty_topics == frozenset()
    assert seeds.stories() == before

    seeds.reads.clear()
    seeds.update()
    assert seeds.reads == [], "the new mtime was remembered"


# -- edits, deletions, moves -------------------------------------------------------


def test_edit_updates_the_story_and_delete_removes_it(seeds: Seeds) -> None:
    path = write(seeds.root / "story.txt", article(1), mtime=NOW - timedelta(days=2))
    write(seeds.root / "other.txt", article(2, topic="river"), mtime=NOW - timedelta(days=2))
    seeds.update()
    (title, old), *_ = [(t, s) for t, s in seeds.stories("glaciers").items()]

    write(path, article(1, extra=" New figures were added."), mtime=NOW - timedelta(days=1))
    result = seeds.update()
    assert result.updated == 1 and result.new == 0
    assert "glaciers" in result.dirty_topics
    edited = seeds.stories("glaciers")[title]
    assert edited.id == old.id
    assert edited.updated > old.updated
    assert "New figures were added." in edited.item.content_html

    path.unlink()
    result = seeds.update()
    assert result.removed == 1
    assert {"glaciers", "everything"} <= result.dirty_topics
    assert seeds.stories("glaciers") == {}
    assert list(seeds.stories()) == [article(2, topic="river").splitlines()[0]]
    assert title not in {s.item.title for s in seeds.ctx.store.topic_stories("everything")}
    assert seeds.ctx.store.file_records("seeds").keys() == {"other.txt"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("story.txt", "renamed.txt"),
        ("story.txt", "archive/2026/story.txt"),
        ("inbox/story.md", "story.md"),
    ],
)
def test_moved_file_with_same_content_keeps_its_story(seeds: Seeds, old: str, new: str) -> None:
    path = write(seeds.root / old, article(5), mtime=NOW - timedelta(days=1))
    write(seeds.root / "other.txt", article(6), mtime=NOW - timedelta(days=1))
    seeds.update()
    before = seeds.stories()

    target = seeds.root / new
    target.parent.mkdir(parents=True, exist_ok=True)
    path.rename(target)
    seeds.reads.clear()
    result = seeds.update()
    assert seeds.reads == [new], "only the moved file is read"
    assert result.problems == ()
    after = seeds.stories()
    assert after.keys() == before.keys()
    assert {t: s.id for t, s in after.items()} == {t: s.id for t, s in before.items()}
    assert set(seeds.ctx.store.file_records("seeds")) == {new, "other.txt"}

    # Settled: the next pass reads nothing and changes nothing.
    seeds.reads.clear()
    again = seeds.update()
    assert seeds.reads == [] and (again.new, again.updated, again.removed) == (0, 0, 0)
    assert {t: s.id for t, s in seeds.stories().items()} == {t: s.id for t, s in before.items()}


def test_a_new_file_reads_no_other_record(seeds: Seeds, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass loads the records of the files that changed; all of them only when one went."""
    for n in range(6):
        write(seeds.root / f"{n:03d}.txt", article(n), mtime=NOW - timedelta(days=1))
    seeds.update()
    store = seeds.ctx.store
    asked: list[list[str] | None] = []
    real = store.file_records

    def recording(source: str, relpaths: Collection[str] | None = None) -> dict[str, Any]:
        asked.append(None if relpaths is None else sorted(relpaths))
        return real(source, relpaths)

    monkeypatch.setattr(store, "file_records", recording)
    write(seeds.root / "new.txt", article(10))
    write(seeds.root / "001.txt", article(1, extra=" Revised."), mtime=NOW)
    result = seeds.update()
    assert (result.new, result.updated) == (1, 1)
    assert asked == [["001.txt"]]

    asked.clear()
    (seeds.root / "002.txt").unlink()
    result = seeds.update()
    assert result.removed == 1 and asked == [None]
    assert set(real("seeds")) == {f"{n:03d}.txt" for n in (0, 1, 3, 4, 5)} | {"new.txt"}


def test_hash_named_file_renamed_to_another_prefix_keeps_its_id(seeds: Seeds) -> None:
    path = write(seeds.root / "003_5eed0ddba11c0ffe.txt", article(7))
    seeds.update()
    (before,) = seeds.stories().values()

    path.rename(seeds.root / "900_5eed0ddba11c0ffe.txt")
    result = seeds.update()
    assert (result.new, result.updated, result.removed) == (0, 0, 0)
    assert result.dirty_topics == frozenset()
    (after,) = seeds.stories().values()
    assert after.id == before.id and after.updated == before.updated
    assert set(seeds.ctx.store.file_records("seeds")) == {"900_5eed0ddba11c0ffe.txt"}


# -- the user's sample and topic queries -------------------------------------------


def test_sample_matches_karabakh_not_jcpoa(seeds: Seeds, sample_seed: Path) -> None:
    shutil.copy2(sample_seed, seeds.root / sample_seed.name)
    result = seeds.update()
    assert result.new == 1
    assert {"karabakh", "everything"} <= result.dirty_topics
    assert "jcpoa" not in result.dirty_topics
    (story,) = seeds.ctx.store.topic_stories("karabakh")
    assert story.item.related, "the Read More headlines are kept as related items"
    assert any("JCPOA" in r.title for r in story.item.related)
    assert seeds.ctx.store.topic_stories("jcpoa") == []


# -- bad files ------------------------------------------------------------------------


BAD_FILES: dict[str, bytes] = {
    "empty.txt": b"",
    "binary.txt": bytes(range(256)) * 16,
    "truncated.rss": b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut',
    "huge.txt": article(99).encode() + b"more words here. " * 5000,
    "misencoded.html": (
        b'<html><head><meta charset="utf-8"><title>Caf\xe9 owners in Gyumri protest</title>'
        b"</head><body><h1>Caf\xe9 owners in Gyumri protest</h1><p>The caf\xe9 owners of the"
        b" city said the new tax was unfair to small businesses.</p></body></html>"
    ),
}


def test_bad_files_are_reported_once_and_do_not_stop_the_others(seeds: Seeds) -> None:
    for n in range(3):
        write(seeds.root / f"good-{n}.txt", article(n))
    for name, data in BAD_FILES.items():
        write(seeds.root / name, data)

    result = seeds.update()
    assert result.outcome is Outcome.OK
    for name in BAD_FILES:
        lines = [p for p in result.problems if name in p]
        assert len(lines) == 1, f"{name}: {result.problems}"
        assert "\n" not in lines[0] and lines[0].startswith("seeds: ")
    assert len(result.problems) == len(BAD_FILES)
    titles = set(seeds.stories())
    for n in range(3):
        assert article(n).splitlines()[0] in titles
    # A mis-encoded page with a declared charset is still read, without mojibake.
    assert "Café owners in Gyumri protest" in titles

    # Unchanged bad files are neither re-read nor re-reported.
    seeds.reads.clear()
    again = seeds.update()
    assert seeds.reads == [] and again.problems == ()
    errors = {r: rec.error for r, rec in seeds.ctx.store.file_records("seeds").items()}
    for name in ("empty.txt", "binary.txt", "huge.txt"):
        assert errors[name], f"{name}: the reason is kept on its record"


def test_bad_file_fixed_later_is_ingested(seeds: Seeds) -> None:
    path = write(seeds.root / "later.txt", b"", mtime=NOW - timedelta(days=1))
    write(seeds.root / "good.txt", article(1))
    first = seeds.update()
    assert [p for p in first.problems if "later.txt" in p]

    seeds.reads.clear()
    write(path, article(2), mtime=NOW - timedelta(hours=1))
    result = seeds.update()
    assert seeds.reads == ["later.txt"]
    assert result.new == 1 and result.problems == ()
    assert article(2).splitlines()[0] in seeds.stories()
    assert seeds.ctx.store.file_records("seeds")["later.txt"].error is None


def test_file_broken_after_ingest_keeps_its_story_until_fixed(seeds: Seeds) -> None:
    path = write(seeds.root / "story.txt", article(3), mtime=NOW - timedelta(days=1))
    seeds.update()
    (before,) = seeds.stories().values()

    write(path, bytes(range(256)) * 4, mtime=NOW - timedelta(hours=2))
    broken = seeds.update()
    assert len(broken.problems) == 1 and "story.txt" in broken.problems[0]
    assert [s.id for s in seeds.stories().values()] == [before.id]

    # Fixed back to the very bytes it had: read again, nothing to ingest.
    write(path, article(3), mtime=NOW - timedelta(hours=1))
    seeds.reads.clear()
    fixed = seeds.update()
    assert seeds.reads == ["story.txt"] and fixed.problems == ()
    assert seeds.ctx.store.file_records("seeds")["story.txt"].error is None
    assert [s.id for s in seeds.stories().values()] == [before.id]


# -- dates --------------------------------------------------------------------------


def test_dates_from_the_file_else_its_mtime_in_utc_never_future(seeds: Seeds) -> None:
    mtime = NOW - timedelta(days=3, hours=2, minutes=17)
    write(
        seeds.root / "front.md",
        "---\ntitle: Front matter wins\n"
        f"date: {FRONT.astimezone(timezone(timedelta(hours=4))).isoformat()}\n---\n\n"
        "The glacier body text is here and long enough to read.\n",
        mtime=mtime,
    )
    write(
        seeds.root / "inline.txt",
        "Dated in the text for the glacier desk\n\n"
        f"Published: {INLINE:%Y-%m-%d %H:%M} UTC\n\n"
        "The glacier body text is here and long enough to read.\n",
        mtime=mtime,
    )
    write(seeds.root / "undated.txt", article(4), mtime=mtime)
    write(seeds.root / "future.txt", article(5), mtime=NOW + timedelta(days=30))
    seeds.update()
    by_title = seeds.stories()

    front = by_title["Front matter wins"].item.published
    assert front == FRONT and front.utcoffset() == timedelta(0)
    inline = by_title["Dated in the text for the glacier desk"].item.published
    assert inline == INLINE
    undated = by_title[article(4).splitlines()[0]].item.published
    assert undated == mtime.replace(microsecond=0) or abs(undated - mtime) < timedelta(seconds=1)
    future = by_title[article(5).splitlines()[0]].item.published
    assert future <= seeds.clock.now
    for story in by_title.values():
        assert story.item.published.tzinfo is not None
        assert story.item.published.utcoffset() == timedelta(0)


def test_parser_bug_on_one_file_is_one_problem_not_a_failed_folder(
    seeds: Seeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_parse = parse_seed

    def flaky_parse(relpath: str, data: bytes, **kwargs: Any) -> ParsedDocument:
        if relpath == "bad.txt":
            raise RuntimeError("parser bug")
        return real_parse(relpath, data, **kwargs)

    monkeypatch.setattr(work, "parse_seed", flaky_parse)
    write(seeds.root / "bad.txt", article(1))
    write(seeds.root / "good.txt", article(2))
    result = seeds.update()
    assert result.problems == ("seeds: bad.txt: unexpected RuntimeError while parsing: parser bug",)
    assert list(seeds.stories()) == [article(2).splitlines()[0]]


def test_long_lead_paragraph_is_summarised(seeds: Seeds) -> None:
    lead = " ".join(f"Sentence {n} of the long glacier lead says a little more." for n in range(40))
    write(
        seeds.root / "long.txt", f"A long lead about the glacier survey\n\nTbilisi (GT): {lead}\n"
    )
    result = seeds.update()
    assert result.problems == ()
    (story,) = seeds.stories().values()
    assert story.item.summary.startswith("Tbilisi") or story.item.summary.startswith("Sentence 0")
    assert len(story.item.summary) <= 300
