"""The seed folder: list files cheaply, read one safely.

:func:`scan` only stats: the pipeline compares ``(size, mtime_ns)`` with what
it stored and re-reads only new or changed files, so a pass over thousands of
unchanged seeds opens none of them. :func:`read_seed` reads one file, confined
to the root: no absolute or ``..`` paths, symlinks resolved and refused when
they leave the root, then the resolved path opened component by component
without following symlinks (so a symlink swapped in after the check is
refused, not followed), FIFOs and devices refused, a size cap.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aggregator.errors import SeedFileError

__all__ = ["SEED_SUFFIXES", "FileStat", "read_seed", "scan", "under"]

#: file extensions read as seeds (lower case)
SEED_SUFFIXES: frozenset[str] = frozenset(
    {
        ".txt",
        ".text",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".xhtml",
        ".xml",
        ".rss",
        ".atom",
        ".rdf",
        ".json",
    }
)

# Project files that share a seed extension but are not articles.
_IGNORED_STEMS = frozenset(
    {
        "readme",
        "license",
        "licence",
        "copying",
        "changelog",
        "changes",
        "contributing",
        "authors",
        "notice",
        "code_of_conduct",
        "security",
        "todo",
        "index",
    }
)


@dataclass(frozen=True)
class FileStat:
    """What :func:`scan` knows about one seed file without reading it."""

    #: POSIX path relative to the seeds folder
    relpath: str
    size: int
    mtime_ns: int


def _is_temp(name: str) -> bool:
    return (
        name.endswith(("~", ".swp", ".swo", ".swx", ".tmp", ".part", ".crdownload", ".bak"))
        or (name.startswith("#") and name.endswith("#"))
        or name.startswith("~$")
    )


def _ignored(name: str) -> bool:
    """Hidden, temporary, or a README-like project file (silently skipped)."""
    if name.startswith(".") or _is_temp(name):
        return True
    return name.rsplit(".", 1)[0].lower() in _IGNORED_STEMS and "_" not in name


def _seed_name(name: str) -> bool:
    """The file name has a seed extension."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in SEED_SUFFIXES


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def scan(root: Path, *, source: str) -> tuple[list[FileStat], list[SeedFileError]]:
    """List the seed files under ``root`` (stat only, no contents read).

    Hidden files and folders, editor temporaries and README-like files are
    skipped silently, as are unsupported extensions. Symlinks are followed
    when they stay inside the root and reported when they leave it.

    Args:
        root: the seeds folder.
        source: the configured source name, for messages.

    Returns:
        ``(files sorted by relpath, problems)``; a problem names its file. A
        folder that cannot be listed or a file that cannot be stat'ed is a
        problem marked ``unseen``: what was stored from it must be kept.

    Raises:
        SeedFileError: the root itself is missing or not a folder (the whole
            source fails; ``path`` is ``"."``).
    """
    try:
        real_root = root.resolve(strict=True)
    except OSError as exc:
        raise SeedFileError(
            source, str(root), f"seed folder not readable: {exc.strerror or exc}"
        ) from exc
    if not real_root.is_dir():
        raise SeedFileError(source, str(root), "seed path is not a folder")

    files: list[FileStat] = []
    problems: list[SeedFileError] = []
    visited: set[Path] = {real_root}
    pending: list[tuple[str, str]] = [(str(root), "")]
    while pending:
        folder, rel_folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(
                SeedFileError(
                    source,
                    rel_folder or ".",
                    f"cannot list folder: {exc.strerror or exc}",
                    unseen=True,
                )
            )
            continue
        # String joins, not PurePosixPath: a folder of thousands of seeds is
        # scanned on every change, and this loop is most of that scan.
        prefix = f"{rel_folder}/" if rel_folder else ""
        subfolders: list[tuple[str, str]] = []
        for entry in entries:
            name = entry.name
            if _ignored(name):
                continue
            relpath = prefix + name
            seed = _seed_name(name)
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if not _inside(target, real_root):
                        problems.append(
                            SeedFileError(
                                source, relpath, "symlink points outside the seed folder; refused"
                            )
                        )
                        continue
                elif not seed and not entry.is_dir(follow_symlinks=False):
                    continue  # neither a folder nor a seed: not even stat'ed
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                problems.append(SeedFileError(source, relpath, "broken symlink"))
                continue
            except (OSError, RuntimeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                problems.append(
                    SeedFileError(source, relpath, f"cannot stat: {reason}", unseen=True)
                )
                continue
            if stat.S_ISDIR(st.st_mode):
                real = Path(entry.path).resolve()
                if real in visited:
                    continue  # a symlink loop or a second way into a folder
                visited.add(real)
                subfolders.append((entry.path, relpath))
                continue
            if not seed:
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(SeedFileError(source, relpath, "not a regular file; refused"))
                continue
            files.append(FileStat(relpath=relpath, size=st.st_size, mtime_ns=st.st_mtime_ns))
        pending.extend(reversed(subfolders))
    files.sort(key=lambda f: f.relpath)
    return files, problems


def under(relpath: str, unseen: Sequence[str]) -> bool:
    """``relpath`` is one of ``unseen`` or lies in one of them (``"."`` is the whole folder)."""
    return any(p in (".", relpath) or relpath.startswith(p.rstrip("/") + "/") for p in unseen)


def read_seed(root: Path, relpath: str, *, source: str, max_bytes: int) -> bytes:
    """Read one seed file, confined to ``root`` and capped at ``max_bytes``.

    Args:
        root: the seeds folder.
        relpath: POSIX path relative to ``root`` (as :func:`scan` returns).
        source: the configured source name, for messages.
        max_bytes: the largest file accepted.

    Returns:
        The file's bytes.

    Raises:
        SeedFileError: the path escapes the root, the file is missing, not a
            regular file, larger than ``max_bytes`` or unreadable.
    """
    rel = PurePosixPath(relpath)
    if rel.is_absolute() or ".." in rel.parts or "\x00" in relpath or not rel.parts:
        raise SeedFileError(source, relpath, "path is absolute or leaves the seed folder; refused")
    try:
        real_root = root.resolve(strict=True)
        real = (root / rel).resolve(strict=True)
    except FileNotFoundError as exc:
        raise SeedFileError(
            source, relpath, "file not found (deleted or a broken symlink)"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise SeedFileError(source, relpath, f"cannot resolve path: {exc}") from exc
    if not _inside(real, real_root):
        raise SeedFileError(source, relpath, "symlink points outside the seed folder; refused")
    try:
        st = real.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SeedFileError(source, relpath, "not a regular file; refused")
        if st.st_size > max_bytes:
            raise SeedFileError(source, relpath, _too_large(st.st_size, max_bytes))
        fd = _open_beneath(real_root, real.relative_to(real_root).parts)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SeedFileError(source, relpath, "not a regular file; refused")
            data = handle.read(max_bytes + 1)
    except SeedFileError:
        raise
    except PermissionError as exc:
        raise SeedFileError(source, relpath, "cannot read: permission denied", unseen=True) from exc
    except FileNotFoundError as exc:
        raise SeedFileError(source, relpath, "file not found (deleted while reading)") from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SeedFileError(
                source, relpath, "a symlink appeared in its path while it was read; refused"
            ) from exc
        raise SeedFileError(
            source, relpath, f"cannot read: {exc.strerror or exc}", unseen=True
        ) from exc
    if len(data) > max_bytes:  # grew after the stat
        raise SeedFileError(source, relpath, _too_large(len(data), max_bytes, grew=True))
    return data


def _open_beneath(real_root: Path, parts: tuple[str, ...]) -> int:
    """Open ``real_root/parts...`` for reading without following any symlink.

    ``parts`` is a path already resolved and checked to lie inside the root,
    so it holds no symlink; opening each component relative to the folder
    opened before it with ``O_NOFOLLOW`` makes the check and the read the
    same file: a component swapped for a symlink since the check fails with
    ``ELOOP`` (or ``ENOTDIR``) instead of leading outside the root.
    ``O_NONBLOCK``: a file swapped for a FIFO does not hang the read.

    Returns:
        A file descriptor the caller owns.

    Raises:
        OSError: a component is missing, a symlink, or unreadable.
    """
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory = getattr(os, "O_DIRECTORY", 0)
    fd = os.open(real_root, os.O_RDONLY | directory)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | directory | nofollow, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        flags = os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0)
        return os.open(parts[-1], flags, dir_fd=fd)
    finally:
        os.close(fd)


def _too_large(size: int, limit: int, *, grew: bool = False) -> str:
    more = "more than " if grew else ""
    return f"file too large: {more}{size:,} bytes, over the {limit:,}-byte limit"
