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
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
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
from aggregator.publish.html import INDEX_PATH, render_index, render_topic_page
from aggregator.publish.jsonfeed import render_json_feed
from aggregator.publish.opml import OPML_PATH, render_opml
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
    "render_topic",
    "write_tree",
]

#: file in the export folder listing what the previous export wrote
MANIFEST_NAME = ".aggregator-manifest.json"


def private_prefix(token: str) -> str:
    """URL path prefix of a private topic's copy for ``token``: ``private/<token>/``."""
    return f"private/{token}/"


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


def render_site(site: Site, feeds: Sequence[TopicFeed]) -> dict[str, Document]:
    """Render the whole site: index, OPML and every topic's documents.

    Args:
        site: site-wide facts.
        feeds: every topic (public and private) with its stories, in listing order.

    Returns:
        ``{url path: document}``. Private topics' documents are included under
        their private paths but absent from the index and the OPML.

    Raises:
        PublishError: as :func:`render_topic`; also when two topics share a name.
    """
    names = [f.topic.name for f in feeds]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PublishError(f"topics: duplicate topic names: {', '.join(dupes)}")
    docs = render_site_pages(site, feeds)
    for feed in feeds:
        docs.update(render_topic(site, feed))
    return docs


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
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in {"", ".", ".."} for part in path.split("/")):
        raise PublishError(f"{path!r}: document path would leave the export folder")
    if content_type.startswith("text/html") and not path.endswith(".html"):
        return f"{path}/index.html"
    return path


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


def _write_atomic(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the export is meant for a web server user to read.
        tmp.chmod(0o644)
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
        try:
            if (
                target.is_file()
                and target.stat().st_size == len(body)
                and target.read_bytes() == body
            ):
                unchanged.append(name)
                continue
            _write_atomic(target, body)
        except OSError as exc:
            raise PublishError(f"{target}: cannot write: {exc}") from exc
        written.append(name)
    removed: list[str] = []
    for name in sorted(previous - targets.keys()):
        target = out_dir / name
        try:
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
