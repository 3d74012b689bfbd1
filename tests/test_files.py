"""The seed folder: confinement, skipped files, stat-only scans, size cap."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import SeedFileError
from aggregator.parse import seed_identity
from aggregator.sources import files
from aggregator.sources.files import FileStat, read_seed, scan


def _tree(root: Path) -> None:
    (root / "a").mkdir()
    (root / "a" / "010_story.txt").write_text("Headline\n\nBody text.")
    (root / "000_a42e47609101a1fc.txt").write_text("Headline\n\nBody text.")
    (root / "feed.rss").write_text("<rss/>")
    (root / "notes.docx").write_text("ignored: unsupported extension")
    (root / "README.md").write_text("ignored silently")
    (root / "LICENSE.txt").write_text("ignored silently")
    (root / ".hidden.txt").write_text("hidden")
    (root / ".git").mkdir()
    (root / ".git" / "x.txt").write_text("hidden folder")
    (root / "draft.txt~").write_text("backup")
    (root / ".draft.txt.swp").write_text("vim swap")
    (root / "#draft.txt#").write_text("emacs autosave")
    (root / "story.md.swp").write_text("swap")


def test_scan_lists_seeds_sorted_and_skips_hidden_temp_and_readme(tmp_path: Path) -> None:
    _tree(tmp_path)
    found, problems = scan(tmp_path, source="seeds")
    assert [f.relpath for f in found] == ["000_a42e47609101a1fc.txt", "a/010_story.txt", "feed.rss"]
    assert problems == []
    st = (tmp_path / "feed.rss").stat()
    assert found[2] == FileStat("feed.rss", st.st_size, st.st_mtime_ns)


def test_scan_reads_no_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    for i in range(200):
        (tmp_path / f"{i:03d}_{i:016x}.txt").write_text("Headline\n\nBody.")
    opened: list[Any] = []
    real_open, real_os_open, real_io_open = builtins.open, os.open, io.open

    def counting(real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            opened.append(args[0] if args else kwargs)
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", counting(real_open))
    monkeypatch.setattr(io, "open", counting(real_io_open))
    monkeypatch.setattr(os, "open", counting(real_os_open))
    monkeypatch.setattr(files.os, "open", counting(real_os_open))
    found, _ = scan(tmp_path, source="seeds")
    assert len(found) == 203
    assert opened == []
    read_seed(tmp_path, found[0].relpath, source="seeds", max_bytes=1000)
    assert opened  # the counter works: a read is counted


def test_symlink_leaving_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "inside.txt").write_text("Headline\n\nBody.")
    (root / "escape.txt").symlink_to(outside)
    (root / "alias.txt").symlink_to(root / "inside.txt")
    (root / "up").symlink_to(tmp_path, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    found, problems = scan(root, source="seeds")
    assert [f.relpath for f in found] == ["alias.txt", "inside.txt"]
    assert sorted(str(p) for p in problems) == [
        "seeds: dangling.txt: broken symlink",
        "seeds: escape.txt: symlink points outside the seed folder; refused",
        "seeds: up: symlink points outside the seed folder; refused",
    ]
    with pytest.raises(SeedFileError, match="outside the seed folder"):
        read_seed(root, "escape.txt", source="seeds", max_bytes=100)
    assert read_seed(root, "alias.txt", source="seeds", max_bytes=100) == b"Headline\n\nBody."


@pytest.mark.parametrize("relpath", ["../secret.txt", "a/../../secret.txt", "/etc/passwd", ""])
def test_read_refuses_paths_leaving_the_root(tmp_path: Path, relpath: str) -> None:
    root = tmp_path / "seeds"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    with pytest.raises(SeedFileError, match="leaves the seed folder"):
        read_seed(root, relpath, source="seeds", max_bytes=100)


def test_size_cap_and_missing_and_unreadable(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 101)
    (tmp_path / "ok.txt").write_bytes(b"x" * 100)
    with pytest.raises(
        SeedFileError, match=r"big\.txt: file too large: 101 bytes, over the 100-byte limit"
    ):
        read_seed(tmp_path, "big.txt", source="seeds", max_bytes=100)
    assert len(read_seed(tmp_path, "ok.txt", source="seeds", max_bytes=100)) == 100
    with pytest.raises(SeedFileError, match=r"gone\.txt: file not found"):
        read_seed(tmp_path, "gone.txt", source="seeds", max_bytes=100)
    locked = tmp_path / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(SeedFileError, match=r"locked\.txt: cannot read: permission denied"):
            read_seed(tmp_path, "locked.txt", source="seeds", max_bytes=100)
    finally:
        locked.chmod(0o644)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    found, problems = scan(tmp_path, source="seeds")
    assert found == []
    assert [str(p) for p in problems] == ["seeds: pipe.txt: not a regular file; refused"]
    with pytest.raises(SeedFileError, match="not a regular file"):
        read_seed(tmp_path, "pipe.txt", source="seeds", max_bytes=100)


def test_missing_root_fails_the_source(tmp_path: Path) -> None:
    with pytest.raises(SeedFileError, match="seed folder not readable"):
        scan(tmp_path / "nope", source="seeds")


def test_seed_identity() -> None:
    assert seed_identity("000_a42e47609101a1fc.txt") == "seed:a42e47609101a1fc"
    assert seed_identity("sub/012_DEADBEEF00.md") == "seed:deadbeef00"
    assert seed_identity("sub/story.txt") == "path:sub/story.txt"
    assert seed_identity("001_reuters_style.txt") == "path:001_reuters_style.txt"
