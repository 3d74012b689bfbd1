"""The static export on disk: atomic writes, gzip copies beside them, and the manifest.

Every published document is a file under the export folder, written
atomically (temp file, fsync, rename) and only when its bytes changed, so an
unchanged file keeps its inode and mtime (and a web server's ETag). Beside
each compressible file lies its gzip copy (``<name>.gz``, level 6, no
timestamp: the same bytes every time), which the daemon serves as is and
nginx's ``gzip_static`` can too.

The manifest (``.aggregator-manifest.json``) lists what the last export
wrote: each file, and for each document its content type, ETag, date, sizes,
the identity (inode, size, mtime) of its files as written, and the
fingerprint of what it was rendered from. It is written last, atomically: a
crash between the files and the manifest leaves files the manifest does not
describe, which the next export notices by their identity and renders again.
Only files the manifest names are ever removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from aggregator.errors import PublishError
from aggregator.model import utc
from aggregator.publish._base import Document

__all__ = [
    "GZIP_MIN_BYTES",
    "MANIFEST_NAME",
    "DocumentFile",
    "Export",
    "Manifest",
    "PublishReport",
    "TopicRecord",
    "WriteReport",
    "file_name",
    "gzip_body",
    "write_tree",
]

#: file in the export folder listing what the previous export wrote
MANIFEST_NAME = ".aggregator-manifest.json"
#: manifest format; an older one (a plain file list) describes no document
MANIFEST_VERSION = 3
#: bodies smaller than this get no gzip copy (headers dominate)
GZIP_MIN_BYTES = 256
GZ_SUFFIX = ".gz"
#: names of the temp files an export writes before renaming them into place
TEMP_PREFIX = ".aggregator-tmp-"

#: modes of the export's private part: only the owner and its group (the web
#: server's) may read a token's copy, never any other local user
_PRIVATE_DIR_MODE = 0o750
_PRIVATE_FILE_MODE = 0o640
_PUBLIC_FILE_MODE = 0o644

#: the manifest each export folder last had in this process, as read or written, with
#: the identity (inode, size, mtime) of its file and each document's row as JSON: a
#: publish reads and parses the file again only when another process replaced it
_LAST: dict[str, tuple[tuple[int, int, int], Manifest, dict[str, tuple[DocumentFile, str]]]] = {}


def gzip_body(body: bytes) -> bytes | None:
    """The gzip copy served for ``body``, or None when it would not be smaller.

    ``mtime=0``: the same bytes for the same body, forever, so the gzip
    variant's ETag is as stable as the document's. Level 6 (zlib's default):
    on archive pages of 175 KB it takes 3.3 ms against level 9's 4.4 ms, for
    0.3 % more bytes.
    """
    if len(body) < GZIP_MIN_BYTES:
        return None
    compressed = gzip.compress(body, compresslevel=6, mtime=0)
    return compressed if len(compressed) < len(body) else None


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """One published document as the export holds it (a manifest entry)."""

    #: URL path without the leading ``/``
    path: str
    #: file name relative to the export folder
    file: str
    content_type: str
    #: strong validator of the identity body
    etag: str
    last_modified: datetime
    size: int
    #: (inode, mtime in ns) of the file as written: a file replaced since is noticed
    ino: int
    mtime_ns: int
    #: the gzip copy (``file + ".gz"``): its size and identity; None: no copy
    gz_size: int | None = None
    gz_ino: int = 0
    gz_mtime_ns: int = 0
    #: fingerprint of what the document was rendered from (see
    #: :mod:`aggregator.publish.incremental`); None: not recorded
    fp: str | None = None

    @property
    def gz_file(self) -> str | None:
        """The gzip copy's file name, if it has one."""
        return self.file + GZ_SUFFIX if self.gz_size is not None else None

    def to_json(self) -> list[object]:
        """A compact row (the manifest lists every archive page: thousands of them)."""
        return [
            self.path,
            self.file,
            self.content_type,
            self.etag,
            self.last_modified.isoformat(),
            self.size,
            self.ino,
            self.mtime_ns,
            self.gz_size,
            self.gz_ino,
            self.gz_mtime_ns,
            self.fp,
        ]

    @classmethod
    def from_json(cls, row: Sequence[Any]) -> DocumentFile:
        """The entry :meth:`to_json` wrote.

        Raises:
            ValueError: not such a row.
            TypeError: not such a row.
        """
        if len(row) != 12:
            raise ValueError(f"a manifest row has 12 fields, not {len(row)}")
        (
            path,
            file,
            content_type,
            etag,
            modified,
            size,
            ino,
            mtime,
            gz_size,
            gz_ino,
            gz_mtime,
            fp,
        ) = row
        return cls(
            str(path),
            str(file),
            str(content_type),
            str(etag),
            utc(datetime.fromisoformat(modified)),
            int(size),
            int(ino),
            int(mtime),
            None if gz_size is None else int(gz_size),
            int(gz_ino),
            int(gz_mtime),
            None if fp is None else str(fp),
        )


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """What the last export knew of one topic (for the index and the OPML)."""

    #: fingerprint of the topic's settings and the site's as rendered
    signature: str
    count: int
    updated: datetime | None
    archive_count: int
    #: the store's change stamp the topic was published at (None: unknown,
    #: and its next publish reads the whole topic)
    stamp: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "signature": self.signature,
            "count": self.count,
            "updated": self.updated.isoformat() if self.updated else None,
            "archive_count": self.archive_count,
            "stamp": self.stamp,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TopicRecord:
        updated = data.get("updated")
        return cls(
            signature=str(data["signature"]),
            count=int(data["count"]),  # type: ignore[call-overload]
            updated=utc(datetime.fromisoformat(str(updated))) if updated else None,
            archive_count=int(data["archive_count"]),  # type: ignore[call-overload]
            stamp=None if data.get("stamp") is None else int(data["stamp"]),  # type: ignore[call-overload]
        )


@dataclass
class Manifest:
    """The export's manifest: its files, documents and topics."""

    files: set[str] = field(default_factory=set)
    documents: dict[str, DocumentFile] = field(default_factory=dict)
    topics: dict[str, TopicRecord] = field(default_factory=dict)

    @classmethod
    def read(cls, out_dir: Path) -> Manifest:
        """The manifest in ``out_dir``; empty when there is none.

        Raises:
            PublishError: it exists but cannot be read, or names a file outside the export.
        """
        path = out_dir / MANIFEST_NAME
        try:
            identity = _identity(path.stat())
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise PublishError(f"{path}: unreadable export manifest: {exc}") from exc
        last = _LAST.get(str(path))
        if last is not None and last[0] == identity:
            return last[1].copy()
        manifest = cls._parse(path)
        _LAST[str(path)] = (identity, manifest.copy(), {})
        return manifest

    def copy(self) -> Manifest:
        """A copy an export may change (the documents and records themselves are frozen)."""
        return Manifest(set(self.files), dict(self.documents), dict(self.topics))

    @classmethod
    def _parse(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise PublishError(f"{path}: unreadable export manifest: {exc}") from exc
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise PublishError(f"{path}: export manifest has no 'files' list")
        # We only ever remove what the manifest names: a name that leaves the
        # folder means someone else wrote it, and nothing in it can be trusted.
        bad = next((f for f in files if not _inside(f) or f == MANIFEST_NAME), None)
        if bad is not None:
            raise PublishError(f"{path}: export manifest names {bad!r}, outside the export")
        manifest = cls(files=set(files))
        if data.get("version") != MANIFEST_VERSION:
            return manifest
        try:
            for doc in data.get("documents", []):
                entry = DocumentFile.from_json(doc)
                if entry.file in manifest.files:
                    manifest.documents[entry.path] = entry
            for name, topic in data.get("topics", {}).items():
                manifest.topics[str(name)] = TopicRecord.from_json(topic)
        except (TypeError, ValueError, KeyError) as exc:
            # A manifest we cannot use only costs a render of everything.
            manifest.documents.clear()
            manifest.topics.clear()
            del exc
        return manifest

    def write(self, out_dir: Path) -> None:
        """Write the manifest atomically (after every file it describes).

        Raises:
            PublishError: it cannot be written.
        """
        path = out_dir / MANIFEST_NAME
        last = _LAST.get(str(path))
        known = last[2] if last is not None else {}
        # Each document's row as JSON, reused while the document is the same: a
        # publish that changed two documents of a thousand encodes two rows.
        rows: dict[str, tuple[DocumentFile, str]] = {}
        for name in sorted(self.documents):
            entry = self.documents[name]
            row = known.get(name)
            if row is None or row[0] != entry:
                row = (entry, _dumps(entry.to_json()))
            rows[name] = row
        body = (
            f'{{"version":{MANIFEST_VERSION},"files":{_dumps(sorted(self.files))},'
            f'"documents":[{",".join(text for _, text in rows.values())}],'
            f'"topics":{_dumps({n: self.topics[n].to_json() for n in sorted(self.topics)})}}}'
        ).encode()
        try:
            _write_atomic(path, body)
            identity = _identity(path.stat())
        except OSError as exc:
            _LAST.pop(str(path), None)
            raise PublishError(f"{path}: cannot write: {exc}") from exc
        _LAST[str(path)] = (identity, self.copy(), rows)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class WriteReport:
    """What an export did; file names relative to the export folder, sorted."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def file_name(path: str, content_type: str) -> str:
    """Relative file name of a document in the static export.

    ``""`` becomes ``index.html`` and an HTML page ``topics/x`` becomes
    ``topics/x/index.html`` (a web server maps ``/topics/x`` to it with
    ``try_files $uri $uri/index.html``); every other path is its own file name.

    Raises:
        PublishError: the path would leave the export folder.
    """
    if path == "":
        return "index.html"
    if not _inside(path):
        raise PublishError(f"{path!r}: document path would leave the export folder")
    if content_type.startswith("text/html") and not path.endswith(".html"):
        return f"{path}/index.html"
    return path


class Export:
    """One export pass over a folder: write documents, then :meth:`finish`.

    Args:
        out_dir: the export folder; created when missing.
        previous: its manifest before this pass (read when not given).

    Raises:
        PublishError: the folder cannot be created, or its manifest is unusable.
    """

    def __init__(self, out_dir: Path, previous: Manifest | None = None) -> None:
        self.out_dir = out_dir
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"{out_dir}: cannot create export folder: {exc}") from exc
        self.previous = previous if previous is not None else Manifest.read(out_dir)
        self.manifest = Manifest()
        self.written: list[str] = []
        self.unchanged: list[str] = []
        # Folders whose renames are made durable once, before the manifest.
        self._renamed_in: set[Path] = set()

    def sweep(self) -> list[str]:
        """Remove the temp files a killed export left (:data:`TEMP_PREFIX`); return their names.

        Only at a publish that checks every topic (a start): a temp file of an
        export running now would be in use.
        """
        swept = []
        for path in self.out_dir.rglob(TEMP_PREFIX + "*"):
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
                    swept.append(path.relative_to(self.out_dir).as_posix())
        return swept

    def current(self, path: str, fp: str) -> DocumentFile | None:
        """The previous export's document at ``path``, if rendered from ``fp`` and intact."""
        old = self.previous.documents.get(path)
        if old is None or old.fp != fp or not self.intact(old):
            return None
        return old

    def keep(self, entry: DocumentFile) -> None:
        """Carry a document of the previous export into this one unchanged."""
        self._add(entry)
        self.unchanged.append(entry.file)
        if entry.gz_file is not None:
            self.unchanged.append(entry.gz_file)

    def write(self, doc: Document, fp: str | None = None) -> DocumentFile:
        """Put ``doc`` (rendered from ``fp``) in the export; write only bytes that changed.

        Raises:
            PublishError: a file cannot be written, or its path is unsafe.
        """
        name = file_name(doc.path, doc.content_type)
        if name == MANIFEST_NAME or name.endswith(GZ_SUFFIX):
            raise PublishError(f"{doc.path!r}: clashes with the export's own files")
        old = self.previous.documents.get(doc.path)
        if (
            old is not None
            and old.file == name
            and old.etag == doc.etag
            and old.content_type == doc.content_type
            and old.last_modified == doc.last_modified
            and self.intact(old)
        ):
            entry = dataclasses.replace(old, fp=fp)
            self.keep(entry)
            return entry
        gz = gzip_body(doc.body)
        mode = _PRIVATE_FILE_MODE if _is_private(name) else _PUBLIC_FILE_MODE
        target = self.out_dir / name
        try:
            _safe_parent(self.out_dir, name)
            # The gzip copy first: a reader that sees the new identity file may
            # be sent its gzip copy next, which must not be the old one.
            gz_stat = None
            if gz is not None:
                gz_stat = self._put(target.with_name(target.name + GZ_SUFFIX), gz, mode)
            stat = self._put(target, doc.body, mode)
        except OSError as exc:
            raise PublishError(f"{target}: cannot write: {exc}") from exc
        entry = DocumentFile(
            path=doc.path,
            file=name,
            content_type=doc.content_type,
            etag=doc.etag,
            last_modified=doc.last_modified,
            size=len(doc.body),
            ino=stat.st_ino,
            mtime_ns=stat.st_mtime_ns,
            gz_size=len(gz) if gz is not None else None,
            gz_ino=gz_stat.st_ino if gz_stat is not None else 0,
            gz_mtime_ns=gz_stat.st_mtime_ns if gz_stat is not None else 0,
            fp=fp,
        )
        self._add(entry)
        return entry

    def _put(self, target: Path, body: bytes, mode: int) -> os.stat_result:
        """Write ``body`` at ``target`` unless it holds those bytes already; its stat after."""
        name = target.relative_to(self.out_dir).as_posix()
        if not target.is_symlink() and target.is_file():
            stat = target.stat()
            if stat.st_size == len(body) and target.read_bytes() == body:
                if stat.st_mode & 0o777 != mode:
                    target.chmod(mode)
                self.unchanged.append(name)
                return stat
        _write_atomic(target, body, mode, sync_dir=False)
        self._renamed_in.add(target.parent)
        self.written.append(name)
        return target.stat()

    def intact(self, entry: DocumentFile) -> bool:
        """Whether the files of ``entry`` are the ones the manifest describes."""
        root = str(self.out_dir)
        if not _same_file(f"{root}/{entry.file}", entry.ino, entry.size, entry.mtime_ns):
            return False
        if entry.gz_file is None or entry.gz_size is None:
            return True
        return _same_file(f"{root}/{entry.gz_file}", entry.gz_ino, entry.gz_size, entry.gz_mtime_ns)

    def _add(self, entry: DocumentFile) -> None:
        self.manifest.documents[entry.path] = entry
        self.manifest.files.add(entry.file)
        if entry.gz_file is not None:
            self.manifest.files.add(entry.gz_file)

    def finish(self) -> WriteReport:
        """Remove what the previous export wrote and this one did not, then write the manifest.

        Raises:
            PublishError: a stale file cannot be removed, or the manifest cannot be written.
        """
        removed: list[str] = []
        for name in sorted(self.previous.files - self.manifest.files):
            target = self.out_dir / name
            try:
                if any(
                    (self.out_dir / parent).is_symlink()
                    for parent in PurePosixPath(name).parents
                    if str(parent) != "."
                ):
                    raise PublishError(f"{target}: refusing to remove through a symlinked folder")
                target.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise PublishError(f"{target}: cannot remove stale file: {exc}") from exc
            removed.append(name)
        _remove_empty_dirs(self.out_dir, removed)
        _lock_private_dirs(self.out_dir)
        # Every rename durable before the manifest that describes it: one fsync
        # per folder, not one per file (2,175 files took 1.1 s of fsync and
        # open on a first publish).
        for directory in sorted(self._renamed_in):
            _fsync_dir(directory)
        self.manifest.write(self.out_dir)
        return WriteReport(
            tuple(sorted(self.written)), tuple(sorted(set(self.unchanged))), tuple(removed)
        )


@dataclass(frozen=True)
class PublishReport:
    """What one incremental publish did, and the served set after it.

    It crosses from the worker process that rendered to the one that serves:
    it lives here, beside the export's types, not beside the renderers.
    """

    #: every published document after the publish, by URL path
    documents: dict[str, DocumentFile]
    #: topics (re)rendered
    topics: tuple[str, ...]
    #: documents rendered, and archive pages kept without rendering
    rendered: int
    kept: int
    #: files written, left alone and removed
    files: WriteReport
    #: why topics failed to render or write (their last good documents stay), one line each
    errors: tuple[str, ...] = field(default=())
    #: the names of those topics
    failed: tuple[str, ...] = field(default=())


def write_tree(out_dir: Path, docs: Mapping[str, Document]) -> WriteReport:
    """Write ``docs`` as a static site under ``out_dir``, with their gzip copies.

    Each file is written atomically and only when its bytes changed, so
    unchanged files keep their mtime (and a web server's ETag). Files that the
    previous export wrote (listed in the manifest file
    ``.aggregator-manifest.json``) and that are no longer published are
    removed; no other file is ever touched.

    Args:
        out_dir: export folder; created when missing.
        docs: ``{url path: document}``, as :func:`~aggregator.publish.render_site` returns.

    Returns:
        A :class:`WriteReport` of written, unchanged and removed file names.

    Raises:
        PublishError: a file cannot be written or removed, or a path is unsafe.
    """
    export = Export(out_dir)
    names: dict[str, str] = {}
    for path in sorted(docs):
        doc = docs[path]
        name = file_name(doc.path, doc.content_type)
        if name in names:
            raise PublishError(f"{doc.path!r} and {names[name]!r}: both export as {name}")
        names[name] = doc.path
        export.write(doc)
    return export.finish()


def _same_file(path: str, ino: int, size: int, mtime_ns: int) -> bool:
    try:
        # os.lstat on a string: a publish checks every archive page's two
        # files, and pathlib's own path handling costs ten times the call.
        stat = os.lstat(path)
    except OSError:
        return False
    return stat.st_ino == ino and stat.st_size == size and stat.st_mtime_ns == mtime_ns


def _inside(name: str) -> bool:
    """Whether a relative name stays inside the folder it is relative to."""
    return not (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in {"", ".", ".."} for part in name.split("/"))
    )


def _is_private(name: str) -> bool:
    return name == "private" or name.startswith("private/")


def _safe_parent(out_dir: Path, name: str) -> Path:
    """Create ``name``'s folders under ``out_dir``, refusing any that is a symlink.

    A symlinked ``topics/`` (planted by anyone who can write the export)
    would send our writes, and our removals, anywhere on the disk.

    Raises:
        PublishError: a folder on the way is a symlink or not a folder.
        OSError: a folder cannot be created.
    """
    current = out_dir
    parts = PurePosixPath(name).parts[:-1]
    for i, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            raise PublishError(f"{current}: refusing to write through a symlinked folder")
        if not current.exists():
            current.mkdir()
        elif not current.is_dir():
            raise PublishError(f"{current}: expected a folder")
        if _is_private("/".join(parts[: i + 1])):
            current.chmod(_PRIVATE_DIR_MODE)
    return current


def _lock_private_dirs(out_dir: Path) -> None:
    """Give every folder of the private part its mode, also where nothing was written.

    An earlier version (or a hand) may have left them readable by all; the
    files a pass keeps are not written, so their folders are seen to here.
    """
    private = out_dir / "private"
    if private.is_symlink() or not private.is_dir():
        return
    for folder, dirs, _files in os.walk(private):  # never follows symlinks
        path = Path(folder)
        if path.stat().st_mode & 0o777 != _PRIVATE_DIR_MODE:
            path.chmod(_PRIVATE_DIR_MODE)
        dirs[:] = [d for d in dirs if not (path / d).is_symlink()]


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; some file systems refuse to open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(
    target: Path, body: bytes, mode: int = _PUBLIC_FILE_MODE, *, sync_dir: bool = True
) -> None:
    """Write ``body`` at ``target`` through a synced temp file and a rename.

    ``sync_dir=False`` leaves the rename's durability to the caller, which
    syncs the folder once for many files (before anything that relies on them).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the export is meant for a web server user to read.
        tmp.chmod(mode)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        _fsync_dir(target.parent)


def _remove_empty_dirs(out_dir: Path, names: Iterable[str]) -> None:
    parents = {p for name in names for p in PurePosixPath(name).parents if str(p) != "."}
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (other files) or already gone
            (out_dir / parent).rmdir()
