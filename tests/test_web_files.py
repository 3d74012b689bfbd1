"""Serving from the written export: the same answers as from memory, and never mismatched bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

import aggregator.web as web
from aggregator.publish import Document, Site, TopicFeed, render_site
from aggregator.publish._base import etag_of, make_document
from aggregator.publish.export import Export, Manifest, write_tree
from aggregator.web import DocumentStore, create_app
from tests.publish_helpers import make_story, make_topic

SITE = Site(base_url="http://127.0.0.1:8080/", title="Test")


def _docs() -> dict[str, Document]:
    stories = tuple(make_story(i) for i in range(12))
    return render_site(SITE, [TopicFeed(make_topic(max_items=5), stories)])


async def _get(app: object, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


def test_the_export_is_served_as_the_documents_were(tmp_path: Path) -> None:
    docs = _docs()
    write_tree(tmp_path, docs)
    from_files = DocumentStore(cache_size=64 * 1024)
    from_files.replace_files(tmp_path, Manifest.read(tmp_path).documents)
    in_memory = DocumentStore(docs)

    async def both(path: str, **headers: str) -> tuple[httpx.Response, httpx.Response]:
        a = await _get(create_app(from_files), path, **headers)
        b = await _get(create_app(in_memory), path, **headers)
        return a, b

    async def main() -> None:
        for path in ("/", "/topics/caucasus.atom", "/topics/caucasus/archive/1.atom"):
            for headers in ({}, {"accept-encoding": "gzip"}):
                a, b = await both(path, **headers)
                assert a.status_code == b.status_code == 200
                assert a.content == b.content
                assert a.headers == b.headers
                etag = a.headers["etag"]
                again, _ = await both(path, **{**headers, "if-none-match": etag})
                assert again.status_code == 304

    asyncio.run(main())
    assert 0 < from_files.cached_bytes <= 64 * 1024


def test_a_file_replaced_behind_the_served_set_is_never_served_under_old_headers(
    tmp_path: Path,
) -> None:
    docs = _docs()
    write_tree(tmp_path, docs)
    store = DocumentStore(cache_size=0)
    store.replace_files(tmp_path, Manifest.read(tmp_path).documents)
    app = create_app(store)
    path = "topics/caucasus.rss"
    old = docs[path]
    new = make_document(
        path, old.body + b"\n<!-- changed -->\n", old.content_type, old.last_modified
    )

    async def main() -> httpx.Response:
        refused = asyncio.Event()
        real = store.body

        async def body(prepared: object, gz: bool) -> bytes | None:
            found = await real(prepared, gz)  # type: ignore[arg-type]
            if found is None:
                refused.set()
            return found

        store.body = body  # type: ignore[method-assign]
        # A publish writes the new file; the request comes before the new set is swapped in.
        export = Export(tmp_path)
        for doc in docs.values():
            export.write(new if doc.path == path else doc)
        asking = asyncio.create_task(_get(app, "/" + path, **{"accept-encoding": "identity"}))
        await asyncio.wait_for(refused.wait(), 60)  # it found the file changed, and waits
        assert not asking.done()
        export.finish()
        store.replace_files(tmp_path, Manifest.read(tmp_path).documents)
        return await asking

    answer = asyncio.run(main())
    assert answer.status_code == 200
    assert answer.content == new.body
    assert answer.headers["etag"] == etag_of(new.body)


def test_a_symlink_planted_in_the_export_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "_RETRIES", 2)
    out = tmp_path / "public"
    write_tree(out, _docs())
    store = DocumentStore(cache_size=0)
    store.replace_files(out, Manifest.read(out).documents)
    secret = tmp_path / "secret.txt"
    secret.write_text("not to be served")
    for name in ("caucasus.json", "caucasus.json.gz"):
        target = out / "topics" / name
        target.unlink()
        os.symlink(secret, target)
    for coding in ("identity", "gzip"):
        answer = asyncio.run(
            _get(create_app(store), "/topics/caucasus.json", **{"accept-encoding": coding})
        )
        assert answer.status_code == 503
        assert b"not to be served" not in answer.content


def test_a_prepared_export_is_served_only_once_installed(tmp_path: Path) -> None:
    # The daemon prepares a publish's served set in its publishing thread and
    # swaps it in on the loop: until the swap, requests see the previous set whole.
    first, second = tmp_path / "first", tmp_path / "second"
    docs = _docs()
    write_tree(first, docs)
    path = "topics/caucasus.atom"
    changed = dict(docs)
    old = docs[path]
    changed[path] = make_document(
        path, old.body + b"\n<!-- changed -->\n", old.content_type, old.last_modified
    )
    write_tree(second, changed)
    store = DocumentStore(cache_size=64 * 1024)
    store.replace_files(first, Manifest.read(first).documents)
    app = create_app(store)

    async def main() -> None:
        before = await _get(app, "/" + path)
        assert before.content == docs[path].body
        prepared = store.prepare_files(second, Manifest.read(second).documents)
        during = await _get(app, "/" + path)
        assert (during.content, during.headers["etag"]) == (before.content, before.headers["etag"])
        assert store.cached_bytes > 0  # the first set's body (gzip: the client takes it)
        store.install(prepared)
        # The body cache keeps only the installed set's files.
        assert store.cached_bytes == 0
        after = await _get(app, "/" + path)
        assert after.content == changed[path].body
        assert after.headers["etag"] != before.headers["etag"]

    asyncio.run(main())
