"""Static export (write_tree) and WebSub change detection + pings."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.errors import PublishError
from aggregator.publish import (
    MANIFEST_NAME,
    Document,
    Site,
    TopicFeed,
    file_name,
    render_site,
    write_tree,
)
from aggregator.publish.websub import changed_feeds, ping_hub
from tests.publish_helpers import make_story, make_topic

SITE = Site(base_url="https://news.example.org/", title="Test", hub="https://hub.example.org/")


def site_docs(n: int = 12, *, other: int = 3) -> dict[str, Document]:
    return render_site(
        SITE,
        [
            TopicFeed(make_topic(max_items=5), tuple(make_story(i) for i in range(n))),
            TopicFeed(make_topic("other"), tuple(make_story(i) for i in range(other))),
            TopicFeed(make_topic("secret", private=True, tokens=("tok",)), (make_story(1),)),
        ],
    )


def test_file_names() -> None:
    assert file_name("", "text/html; charset=utf-8") == "index.html"
    assert file_name("topics/x", "text/html; charset=utf-8") == "topics/x/index.html"
    assert file_name("topics/x.atom", "application/atom+xml") == "topics/x.atom"
    for bad in ("../x", "/etc/passwd", "a//b", "a/./b"):
        with pytest.raises(PublishError):
            file_name(bad, "application/atom+xml")


def test_write_tree_writes_skips_and_removes(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "keep-me.txt").write_text("not ours")
    docs = site_docs()
    names = {file_name(doc.path, doc.content_type) for doc in docs.values()}
    gzipped = {name + ".gz" for name in names}
    first = write_tree(out, docs)
    # each document, and beside each one worth compressing its gzip copy
    copies = {name for name in first.written if name.endswith(".gz")}
    assert set(first.written) - copies == names and not first.unchanged and not first.removed
    assert copies and copies <= gzipped
    for doc in docs.values():
        name = file_name(doc.path, doc.content_type)
        assert (out / name).read_bytes() == doc.body
        gz = out / (name + ".gz")
        assert (
            (gzip.decompress(gz.read_bytes()) == doc.body) if gz.exists() else len(doc.body) < 1024
        )
    assert (out / "index.html").exists() and (out / "topics/caucasus/index.html").exists()
    assert (out / "private/tok/topics/secret.atom").exists()
    assert oct((out / "topics/caucasus.atom").stat().st_mode & 0o777) == "0o644"
    os.utime(out / "topics/caucasus.atom", ns=(1, 1))  # a rewrite would reset this

    second = write_tree(out, site_docs())
    assert not second.written and not second.removed
    assert set(second.unchanged) == names | copies
    assert (out / "topics/caucasus.atom").stat().st_mtime_ns == 1

    # Fewer stories: archives disappear, the rest is rewritten only where it changed.
    third = write_tree(out, site_docs(4))
    assert set(third.removed) == {
        "topics/caucasus/archive/1.atom",
        "topics/caucasus/archive/1.atom.gz",
        "topics/caucasus/archive/2.atom",
        "topics/caucasus/archive/2.atom.gz",
    }
    assert not (out / "topics/caucasus/archive").exists()
    assert "topics/other.atom" in third.unchanged
    assert (out / "keep-me.txt").read_text() == "not ours"
    assert not list(out.rglob(".aggregator-tmp-*"))
    assert (out / MANIFEST_NAME).exists()


def test_every_rename_is_durable_before_the_manifest_with_one_sync_per_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut leaves either the old manifest or files it can rely on."""
    import aggregator.publish.export as export_module

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(export_module.os, "fsync", fsync)
    out = tmp_path / "site"
    report = write_tree(out, site_docs())
    folders = {str((out / name).parent) for name in report.written}
    assert len(folders) > 1
    files = [i for i, p in enumerate(synced) if not Path(p).is_dir()]
    assert len(files) == len(report.written) + 1  # every file, then the manifest
    folder_syncs = [p for p in synced[: files[-1]] if p in folders]
    # each folder once, all of them before the manifest is written
    assert sorted(folder_syncs) == sorted(folders)


def test_write_tree_reports_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PublishError, match="file"):
        write_tree(blocker / "out", site_docs())


def test_changed_feeds_only_lists_changed_public_subscription_feeds() -> None:
    before = site_docs()
    assert changed_feeds(before, site_docs()) == []
    after = site_docs(13)  # caucasus gains a story; other and secret unchanged
    assert changed_feeds(before, after) == [
        "topics/caucasus.atom",
        "topics/caucasus.json",
        "topics/caucasus.rss",
    ]
    first_run = changed_feeds({}, before)
    assert "topics/other.atom" in first_run
    assert not any("archive" in p or p.startswith("private/") for p in first_run)


def _poster(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    async def post(url: str, form: Mapping[str, str]) -> int:
        return (await client.post(url, data=dict(form))).status_code

    return post


def test_hub_receives_one_ping_per_changed_feed(httpserver: HTTPServer) -> None:
    pings: list[dict[str, list[str]]] = []

    def hub(request: Request) -> Response:
        pings.append(parse_qs(request.get_data(as_text=True)))
        return Response(status=204)

    httpserver.expect_request("/hub", method="POST").respond_with_handler(hub)
    hub_url = httpserver.url_for("/hub")

    async def republish(before: dict[str, Document], after: dict[str, Document]) -> None:
        paths = changed_feeds(before, after)
        async with httpx.AsyncClient() as client:
            results = await ping_hub(
                hub_url, [SITE.base_url + p for p in paths], post=_poster(client)
            )
        assert all(r.ok and r.status == 204 for r in results)

    v1 = site_docs()
    asyncio.run(republish(v1, site_docs()))  # nothing changed: no ping
    assert pings == []
    asyncio.run(republish(v1, site_docs(13)))
    assert sorted(p["hub.url"][0] for p in pings) == [
        "https://news.example.org/topics/caucasus.atom",
        "https://news.example.org/topics/caucasus.json",
        "https://news.example.org/topics/caucasus.rss",
    ]
    assert all(p["hub.mode"] == ["publish"] for p in pings)


def test_failed_pings_are_values(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("no", status=500)

    async def run() -> list[object]:
        async with httpx.AsyncClient() as client:
            return list(
                await ping_hub(
                    httpserver.url_for("/hub"), ["https://x/a.atom"], post=_poster(client)
                )
            )

    (result,) = asyncio.run(run())
    assert not result.ok and result.status == 500 and "HTTP 500" in (result.error or "")  # type: ignore[attr-defined]

    async def broken(url: str, form: Mapping[str, str]) -> int:
        raise OSError("connection refused")

    (failed,) = asyncio.run(ping_hub("https://hub/", ["https://x/a.atom"], post=broken))
    assert failed.status is None and "connection refused" in (failed.error or "")


def test_the_manifest_is_parsed_once_per_process_and_again_when_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish reuses the manifest it wrote; one another process wrote is read anew."""
    from aggregator.publish import export

    out = tmp_path / "site"
    write_tree(out, site_docs())
    written = (out / MANIFEST_NAME).read_bytes()
    # The rows written one by one read as the whole manifest encoded at once did.
    manifest = export.Manifest.read(out)
    data = json.loads(written)
    assert written == json.dumps(data, separators=(",", ":")).encode()
    assert data["documents"] == [
        manifest.documents[p].to_json() for p in sorted(manifest.documents)
    ]

    parsed: list[Path] = []
    parse = export.Manifest._parse
    monkeypatch.setattr(
        export.Manifest, "_parse", classmethod(lambda cls, p: parsed.append(p) or parse(p))
    )
    first = export.Manifest.read(out)
    assert not parsed  # the one this process wrote
    first.files.clear()  # a copy: an export may change what it read
    first.documents.clear()
    assert export.Manifest.read(out).documents == manifest.documents
    assert not parsed
    # Another process's publish replaces the file: it is read again.
    other = dict(data, documents=data["documents"][:1])
    replacement = out / "replacement.json"
    replacement.write_text(json.dumps(other, separators=(",", ":")))
    os.replace(replacement, out / MANIFEST_NAME)
    again = export.Manifest.read(out)
    assert parsed == [out / MANIFEST_NAME]
    assert list(again.documents.values()) == [export.DocumentFile.from_json(data["documents"][0])]
    # And the next publish after it writes every document's row again, not the cached ones.
    write_tree(out, site_docs())
    assert json.loads((out / MANIFEST_NAME).read_bytes()) == data
