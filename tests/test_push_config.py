"""The push settings load, default and fail with their key paths; signatures; the callback route."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.push.signing import sign, valid_hub_signature
from aggregator.web import DocumentStore, create_app
from aggregator.web.callbacks import RateLimit


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_interval_auto_in_defaults_or_on_a_source(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
defaults: {interval: auto}
sources:
  - {name: a, url: "https://a.example/feed"}
  - {name: b, url: "https://b.example/feed", interval: 10m}
  - {name: c, url: "https://c.example/feed", interval: AUTO}
""",
    )
    a, b, c = config.sources
    assert a.adaptive and a.interval == timedelta(minutes=30)
    assert not b.adaptive and b.interval == timedelta(minutes=10)
    assert c.adaptive
    fixed = _load(
        tmp_path,
        "defaults: {interval: 15m}\n"
        "sources: [{name: a, url: 'https://a.example/', interval: auto}]\n",
    )
    assert fixed.sources[0].adaptive and fixed.sources[0].interval == timedelta(minutes=15)


def test_a_bad_interval_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.interval"):
        _load(tmp_path, "sources: [{name: a, url: 'https://a.example/', interval: often}]\n")


def test_websub_is_on_by_default_only_with_a_base_url(tmp_path: Path) -> None:
    assert not _load(tmp_path, "sources: []\n").websub.subscribe
    config = _load(tmp_path, "server: {base_url: 'https://feeds.example/'}\n")
    assert config.websub.subscribe and config.websub.fallback_interval == timedelta(hours=6)
    off = _load(tmp_path, "server: {base_url: 'https://f.example/'}\nwebsub: {subscribe: false}\n")
    assert not off.websub.subscribe
    src = _load(tmp_path, "sources: [{name: a, url: 'https://a.example/', websub: false}]\n")
    assert not src.sources[0].websub


def test_notify_targets_are_checked_at_load(tmp_path: Path) -> None:
    good = _load(
        tmp_path,
        "topics: [{name: t, query: x, notify: [{url: 'https://h.example/in', "
        "secret: '0123456789abcdef'}]}]\n",
    )
    [target] = good.topics[0].notify
    assert target.url == "https://h.example/in" and "0123" not in repr(target)
    with pytest.raises(ConfigError, match=r"topics\[0\]\.notify\[0\]\.secret"):
        _load(
            tmp_path,
            "topics: [{name: t, query: x, notify: [{url: 'https://h.example/', secret: short}]}]\n",
        )
    with pytest.raises(ConfigError, match=r"topics\[0\]\.notify\[0\]\.url"):
        _load(
            tmp_path,
            "topics: [{name: t, query: x, notify: [{url: 'ftp://h.example/', "
            "secret: '0123456789abcdef'}]}]\n",
        )
    with pytest.raises(ConfigError, match=r"websub\.lease"):
        _load(tmp_path, "websub: {lease: 10m}\n")


def test_hub_signatures() -> None:
    body = b"<feed/>"
    for algorithm in ("sha1", "sha256", "sha384", "sha512"):
        assert valid_hub_signature(sign("s3cret", body, algorithm), "s3cret", body)
    assert valid_hub_signature(
        sign("s3cret", body).upper().replace("SHA256", "sha256"), "s3cret", body
    )
    assert not valid_hub_signature(sign("other", body), "s3cret", body)
    assert not valid_hub_signature(sign("s3cret", body + b" "), "s3cret", body)
    assert not valid_hub_signature(None, "s3cret", body)
    assert not valid_hub_signature("md5=abc", "s3cret", body)
    assert not valid_hub_signature("garbage", "s3cret", body)


class _Handler:
    max_body = 16

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def verify(self, callback: str, params: dict[str, str]) -> str | None:
        return params.get("hub.challenge") if callback == "known" else None

    async def distribute(self, callback: str, body: bytes, headers: dict[str, str]) -> int:
        self.bodies.append(body)
        return 202


def test_the_callback_route_caps_bodies_and_answers_verifications() -> None:
    handler = _Handler()
    app = create_app(DocumentStore(), callbacks=handler)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/websub/known?hub.challenge=abc")).text == "abc"
            assert (await client.get("/websub/unknown?hub.challenge=abc")).status_code == 404
            assert (await client.post("/websub/known", content=b"x" * 16)).status_code == 202
            assert (await client.post("/websub/known", content=b"x" * 17)).status_code == 413

    asyncio.run(run())
    assert handler.bodies == [b"x" * 16]


def test_the_rate_limit_is_per_callback() -> None:
    limit = RateLimit(rate=1.0, burst=3)
    assert [limit.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b", now=0.0)  # another callback is not affected
    assert limit.allow("a", now=1.5)  # tokens come back with time


def test_only_sane_http_links_are_kept_as_a_feeds_hub_or_self_url() -> None:
    from aggregator.update.remote import _web_link

    assert _web_link("https://hub.example/") == "https://hub.example/"
    for bad in (None, "", "javascript:alert(1)", "http://[x", "http://a/\udfff", "ftp://h/"):
        assert _web_link(bad) is None
