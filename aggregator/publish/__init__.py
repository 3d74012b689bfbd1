"""Publishing: topic feeds (Atom, RSS 2.0, JSON Feed), archives, OPML and HTML pages.

Everything here is a pure function of its inputs: the same stories render
byte-identical documents (no build timestamps anywhere), so ETags stay put
and unchanged feeds answer 304. :func:`write_tree` is the only I/O: the static
export that any web server (see ``config/nginx-aggregator.conf``) can serve.

URL layout, the same for the server and the export::

    /                                   index.html
    /topics.opml                        topics.opml
    /topics/<name>                      topics/<name>/index.html
    /topics/<name>.atom|.rss|.json      topics/<name>.atom ...
    /topics/<name>/archive/<n>.atom     topics/<name>/archive/<n>.atom   (1 = oldest)
    /private/<token>/topics/<name>...   private/<token>/topics/<name>...  (private topics)

Private topics render one copy per token under ``private/<token>/`` (their
self links carry the token so a reader can follow them); the server also
answers the public path with HTTP Basic auth (password = token) by serving
that copy. Private topics never appear in the index or the OPML, and their
feeds never name the WebSub hub (a hub must not learn a token).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aggregator.errors import PublishError
from aggregator.publish._base import (
    ATOM_TYPE,
    HTML_TYPE,
    JSON_FEED_TYPE,
    OPML_TYPE,
    RSS_TYPE,
    Document,
    Site,
    TopicFeed,
    TopicUrls,
    check_token,
    paginate,
)
from aggregator.publish.atom import render_atom
from aggregator.publish.html import render_index, render_status_page, render_topic_page
from aggregator.publish.jsonfeed import render_json_feed
from aggregator.publish.opml import render_opml
from aggregator.publish.paths import INDEX_PATH, OPML_PATH, private_prefix
from aggregator.publish.rss import render_rss

__all__ = [
    "ATOM_TYPE",
    "HTML_TYPE",
    "INDEX_PATH",
    "JSON_FEED_TYPE",
    "MANIFEST_NAME",
    "OPML_PATH",
    "OPML_TYPE",
    "RSS_TYPE",
    "Document",
    "Site",
    "TopicFeed",
    "WriteReport",
    "file_name",
    "private_prefix",
    "render_site",
    "render_site_pages",
    "render_status_page",
    "render_topic",
    "render_topic_isolated",
    "write_tree",
]

#: file in the export folder listing what the previous export wrote
MANIFEST_NAME = ".aggregator-manifest.json"

log = logging.getLogger(__name__)


def _log_failure(error: PublishError) -> None:
    log.error("%s", error)


def _render_copy(site: Site, feed: TopicFeed, urls: TopicUrls, public: bool) -> dict[str, Document]:
    topic = feed.topic
    pages = paginate(feed.stories, topic.max_items, resurface=topic.updates == "resurface")
    current = pages[0]
    docs = [
        render_atom(site, topic.title, topic.description, urls, page, public=public)
        for page in pages
    ]
    docs.append(
        render_rss(site, topic.title, topic.description, urls, current.stories, public=public)
    )
    docs.append(
        render_json_feed(site, topic.title, topic.description, urls, current.stories, public=public)
    )
    docs.append(render_topic_page(site, feed, urls, current.stories, current.archive_count))
    return {doc.path: doc for doc in docs}


def render_topic(site: Site, feed: TopicFeed) -> dict[str, Document]:
    """Render every document of one topic: Atom, RSS, JSON Feed, HTML page, archives.

    A public topic renders under ``topics/``; a private one renders one copy per
    token under ``private/<token>/topics/`` and nothing at the public paths.

    Args:
        site: site-wide facts.
        feed: the topic and all of its stories, in any order.

    Returns:
        ``{url path: document}``; rendering the same input twice is byte-identical.

    Raises:
        PublishError: a private topic has no token, or a token unusable in a URL path.
    """
    topic = feed.topic
    if not topic.private:
        return _render_copy(site, feed, TopicUrls(site.base_url, topic.name, ""), public=True)
    if not topic.tokens:
        raise PublishError(f"topic {topic.name!r}: private topic without any token")
    docs: dict[str, Document] = {}
    for token in topic.tokens:
        try:
            check_token(topic.name, token)
        except ValueError as exc:
            raise PublishError(str(exc)) from exc
        urls = TopicUrls(site.base_url, topic.name, private_prefix(token))
        docs.update(_render_copy(site, feed, urls, public=False))
    return docs


def render_site(
    site: Site,
    feeds: Sequence[TopicFeed],
    *,
    on_error: Callable[[PublishError], None] = _log_failure,
) -> dict[str, Document]:
    """Render the whole site: index, OPML and every topic's documents.

    Each topic renders on its own: one that fails (a field no format can
    carry, a bad token) is left out and reported to ``on_error``, and the
    others are published all the same.

    Args:
        site: site-wide facts.
        feeds: every topic (public and private) with its stories, in listing order.
        on_error: called with each topic's failure; logs it by default.

    Returns:
        ``{url path: document}``. Private topics' documents are included under
        their private paths but absent from the index and the OPML.

    Raises:
        PublishError: two topics share a name.
    """
    names = [f.topic.name for f in feeds]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PublishError(f"topics: duplicate topic names: {', '.join(dupes)}")
    docs = render_site_pages(site, feeds)
    for feed in feeds:
        try:
            docs.update(render_topic_isolated(site, feed))
        except PublishError as exc:
            on_error(exc)
    return docs


def render_topic_isolated(site: Site, feed: TopicFeed) -> dict[str, Document]:
    """:func:`render_topic`, with any failure turned into one :class:`PublishError`.

    A story field that slipped past every guard must cost its own topic, not
    the whole site or the daemon's start.

    Raises:
        PublishError: the topic cannot be rendered; names the topic and the cause.
    """
    try:
        return render_topic(site, feed)
    except PublishError:
        raise
    except Exception as exc:  # any renderer bug is this topic's failure alone
        raise PublishError(f"topic {feed.topic.name!r}: cannot render: {exc}") from exc


def render_site_pages(site: Site, feeds: Sequence[TopicFeed]) -> dict[str, Document]:
    """The documents that list every public topic: the index page and the OPML.

    :func:`render_site` without the topics' own documents, so a change in one
    topic costs that topic's documents plus these two.
    """
    public = [f for f in feeds if not f.topic.private]
    archive_counts = [paginate(f.stories, f.topic.max_items)[0].archive_count for f in public]
    index = render_index(site, public, archive_counts)
    opml = render_opml(site, public)
    return {index.path: index, opml.path: opml}


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


def _inside(name: str) -> bool:
    """Whether a relative name stays inside the folder it is relative to."""
    return not (
        PurePosixPath(name).is_absolute()
        or "\\" in name
        or "\x00" in name
        or any(part in {"", ".", ".."} for part in name.split("/"))
    )


#: modes of the export's private part: only the owner and its group (the web
#: server's) may read a token's copy, never any other local user
_PRIVATE_DIR_MODE = 0o750
_PRIVATE_FILE_MODE = 0o640
_PUBLIC_FILE_MODE = 0o644


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


@dataclass(frozen=True)
class WriteReport:
    """What :func:`write_tree` did; file names relative to the export folder, sorted."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; some file systems refuse to open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(target: Path, body: bytes, mode: int = _PUBLIC_FILE_MODE) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
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
    _fsync_dir(target.parent)


def _read_manifest(out_dir: Path) -> set[str]:
    path = out_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
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
    return set(files)


def _remove_empty_dirs(out_dir: Path, names: Iterable[str]) -> None:
    parents = {p for name in names for p in PurePosixPath(name).parents if str(p) != "."}
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (other files) or already gone
            (out_dir / parent).rmdir()


def write_tree(out_dir: Path, docs: Mapping[str, Document]) -> WriteReport:
    """Write ``docs`` as a static site under ``out_dir``.

    Each file is written atomically (temp file, fsync, rename) and only when
    its bytes changed, so unchanged files keep their mtime (and a web server's
    ETag). Files that the previous export wrote (listed in the manifest file
    ``.aggregator-manifest.json``) and that are no longer published are
    removed; no other file is ever touched.

    Args:
        out_dir: export folder; created when missing.
        docs: ``{url path: document}``, as :func:`render_site` returns.

    Returns:
        A :class:`WriteReport` of written, unchanged and removed file names.

    Raises:
        PublishError: a file cannot be written or removed, or a path is unsafe.
    """
    targets: dict[str, bytes] = {}
    for doc in docs.values():
        name = file_name(doc.path, doc.content_type)
        if name == MANIFEST_NAME:
            raise PublishError(f"{doc.path!r}: clashes with the export manifest")
        targets[name] = doc.body
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"{out_dir}: cannot create export folder: {exc}") from exc
    previous = _read_manifest(out_dir)
    written: list[str] = []
    unchanged: list[str] = []
    for name in sorted(targets):
        target = out_dir / name
        body = targets[name]
        mode = _PRIVATE_FILE_MODE if _is_private(name) else _PUBLIC_FILE_MODE
        try:
            _safe_parent(out_dir, name)
            if (
                not target.is_symlink()
                and target.is_file()
                and target.stat().st_size == len(body)
                and target.read_bytes() == body
            ):
                if target.stat().st_mode & 0o777 != mode:
                    target.chmod(mode)
                unchanged.append(name)
                continue
            _write_atomic(target, body, mode)
        except OSError as exc:
            raise PublishError(f"{target}: cannot write: {exc}") from exc
        written.append(name)
    removed: list[str] = []
    for name in sorted(previous - targets.keys()):
        target = out_dir / name
        try:
            if any(
                (out_dir / parent).is_symlink()
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
    _remove_empty_dirs(out_dir, removed)
    manifest = json.dumps({"files": sorted(targets)}, indent=0).encode("utf-8")
    try:
        _write_atomic(out_dir / MANIFEST_NAME, manifest)
    except OSError as exc:
        raise PublishError(f"{out_dir / MANIFEST_NAME}: cannot write: {exc}") from exc
    return WriteReport(tuple(written), tuple(unchanged), tuple(removed))
