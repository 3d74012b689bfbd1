"""``/status``: refused without the admin token, served with either form, read by Chromium."""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from lxml import html as lxml_html

from aggregator.config import Config, load_config
from aggregator.model import Outcome, Poll, SourceState
from aggregator.publish import render_status_page
from aggregator.store import SourceWrite, SQLStore, open_store
from aggregator.store.push import Subscription
from aggregator.update import Context, read_status
from aggregator.update.service import status_page
from aggregator.web import DocumentStore, create_app
from tests.cdp import chromium_page
from tests.publish_helpers import free_socket, run_server

from .factories import T0, make_item

TOKEN = "status-token-0123456789"
NOW = T0 + timedelta(hours=30)
SECRET_URL = "https://reader:hunter2@feeds.example.org/private.xml?api_key=SECRET123"


@dataclass
class Served:
    url: str
    config: Config
    store: SQLStore


def _config(tmp: Path) -> Config:
    path = tmp / "aggregator.yaml"
    path.write_text(
        f"""
data_dir: var
server: {{admin_token: {TOKEN}}}
sources:
  - {{name: wire, url: "https://wire.example.org/feed.xml"}}
  - {{name: broken, url: "https://broken.example.org/feed.xml"}}
  - {{name: quiet, url: "https://quiet.example.org/feed.xml"}}
  - {{name: seeds, path: seeds}}
topics:
  - {{name: all, query: story}}
""",
        encoding="utf-8",
    )
    return load_config(path)


def _history(store: SQLStore, config: Config) -> None:
    """A day and more of polls: wire healthy, broken failing now, quiet never polled."""
    writes = []
    for hour in range(30):
        at = T0 + timedelta(hours=hour)
        items = (make_item(f"w{hour}", source="wire", title=f"Story {hour}", body=f"Body {hour}"),)
        wire = SourceState(
            name="wire",
            location="https://wire.example.org/feed.xml",
            last_outcome=Outcome.OK,
            last_attempt_at=at,
            last_success_at=at,
            next_due_at=at + timedelta(hours=1),
        )
        writes.append(
            SourceWrite(
                "wire",
                items=items if hour % 3 == 0 else (),
                state=wire,
                now=at,
                poll=Poll("wire", at, Outcome.OK, 200, 0.1 + hour / 100, 4096),
            )
        )
        failed = hour >= 27
        broken = SourceState(
            name="broken",
            location="https://broken.example.org/feed.xml",
            last_outcome=Outcome.ERROR if failed else Outcome.OK,
            last_attempt_at=at,
            last_success_at=T0 + timedelta(hours=26),
            consecutive_failures=hour - 26 if failed else 0,
            last_error=f"broken: {SECRET_URL}: HTTP 500" if failed else None,
            last_error_class="HTTPStatusError" if failed else None,
        )
        outcome = Outcome.ERROR if failed else Outcome.NOT_MODIFIED
        writes.append(
            SourceWrite(
                "broken",
                state=broken,
                now=at,
                poll=Poll("broken", at, outcome, 500 if failed else 304, 0.05),
            )
        )
    store.apply(writes, now=NOW, matchers={"all": lambda item: True})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("status")
    config = _config(tmp)
    store = open_store(config.store_url)
    store.sync_sources(config.sources, now=T0)
    _history(store, config)
    publishes = [(NOW - timedelta(minutes=10 * i), 0.02 * i) for i in range(6, 0, -1)]

    def render() -> bytes:
        status = read_status(config, store, now=NOW, publishes=publishes)
        return render_status_page(status, title="Test site")

    app = create_app(DocumentStore({}), status=render, admin_token=config.server.admin_token)
    try:
        with run_server(app, free_socket()) as running:
            yield Served(running.base_url + "status", config, store)
    finally:
        store.close()


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("admin", "wrong-token-0123456789"),
        _basic(TOKEN, ""),
        {"authorization": "Bearer wrong-token-0123456789"},
        {"authorization": f"Bearer {TOKEN[:-1]}"},
        {"authorization": f"Token {TOKEN}"},
        {"authorization": "Basic !!!not-base64"},
    ],
    ids=["none", "wrong-basic", "token-as-user", "wrong-bearer", "prefix", "scheme", "garbage"],
)
def test_refused_without_the_token(served: Served, headers: dict[str, str]) -> None:
    r = httpx.get(served.url, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert b"Status" not in r.content


@pytest.mark.parametrize(
    "headers",
    [_basic("admin", TOKEN), _basic("", TOKEN), {"authorization": f"Bearer {TOKEN}"}],
    ids=["basic", "basic-no-user", "bearer"],
)
def test_served_with_either_form_of_the_token(served: Served, headers: dict[str, str]) -> None:
    r = httpx.get(served.url, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert "script-src" not in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_gzip_when_accepted(served: Served) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    plain = httpx.get(served.url, headers={**auth, "accept-encoding": "identity"})
    packed = httpx.get(served.url, headers={**auth, "accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.text == plain.text  # httpx decodes it


def test_no_token_configured_no_page(tmp_path: Path) -> None:
    app = create_app(DocumentStore({}), status=lambda: b"never", admin_token=None)
    with run_server(app, free_socket()) as running:
        r = httpx.get(running.base_url + "status", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404


def test_page_shows_each_source_state_and_redacts_secrets(served: Served) -> None:
    r = httpx.get(served.url, headers={"authorization": f"Bearer {TOKEN}"})
    dom = lxml_html.fromstring(r.content)
    states = {li.get("data-source"): li.get("data-state") for li in dom.xpath("//li[@data-source]")}
    assert states == {"wire": "ok", "broken": "failing", "quiet": "new", "seeds": "new"}
    broken = dom.xpath("//li[@data-source='broken']")[0]
    assert broken.findtext(".//p[@class='error']").endswith("HTTP 500")
    assert "hunter2" not in r.text and "SECRET123" not in r.text
    # trouble first
    assert dom.xpath("//li[@data-source]/@data-source")[0] == "broken"
    wire = dom.xpath("//li[@data-source='wire']")[0]
    assert len(wire.xpath(".//svg/rect")) == 30
    assert wire.xpath(".//dd")[3].text == "8.0"  # 10 new entries in 30 hours
    topic_cells = dom.xpath("//table//td/text()")
    assert topic_cells[:2] == ["all", "10"]


def test_page_shows_websub_subscriptions_and_webhook_deliveries_redacted(tmp_path: Path) -> None:
    """The operator sees push both ways on the page, as ``aggregator status`` prints it."""
    config = _config(tmp_path)
    store = open_store(config.store_url)
    try:
        store.sync_sources(config.sources, now=T0)
        assert b'id="push"' not in status_page(Context(config, store), now=NOW)
        store.push.save_subscription(
            Subscription(
                source="wire",
                hub="https://hub.example.org/?token=HUBSECRET",
                topic="https://wire.example.org/feed.xml",
                callback="cb0123",
                secret="s3cr3t-callback",
                state="failed",
                mode="subscribe",
                requested_at=T0,
                lease_until=NOW + timedelta(hours=5),
                last_error="hub answered 500",
            )
        )
        target = "https://hooks.example.net/in?key=HOOKSECRET"
        store.push.queue("all", target, [("s1", "{}"), ("s2", "{}"), ("s3", "{}")], upto=3, now=T0)
        first, second, _pending = store.push.deliveries()
        store.push.record_attempt(
            first.id, at=T0, status=204, error=None, delivered=True, next_attempt_at=None
        )
        store.push.record_attempt(
            second.id,
            at=T0,
            status=500,
            error=f"{target}: HTTP 500",
            delivered=False,
            next_attempt_at=None,
        )
        page = status_page(Context(config, store), now=NOW)
    finally:
        store.close()
    text = page.decode()
    assert "HUBSECRET" not in text and "HOOKSECRET" not in text and "s3cr3t" not in text
    dom = lxml_html.fromstring(page)
    (sub,) = dom.xpath("//table[@id='websub']//tr[@data-source]")
    assert sub.get("data-state") == "failed"
    cells = [td.text_content() for td in sub.xpath("td")]
    assert cells[0] == "wire" and cells[1].startswith("https://hub.example.org/")
    assert cells[3] == "in 5 h" and cells[4] == "hub answered 500"
    (hook,) = dom.xpath("//table[@id='webhooks']//tr[@data-topic]")
    cells = [td.text_content() for td in hook.xpath("td")]
    assert cells[0] == "all" and cells[1].startswith("https://hooks.example.net/in?key=")
    assert cells[2:5] == ["1", "1", "1"]  # delivered, pending, given up


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package)")
    return found


@pytest.mark.parametrize(
    ("width", "mobile"), [(1200, False), (390, True)], ids=["desktop", "phone"]
)
def test_page_in_headless_chromium(served: Served, width: int, mobile: bool) -> None:
    chromium = _chromium()

    async def load() -> tuple[list[str], dict[str, object]]:
        async with chromium_page(chromium, width=width, height=844, mobile=mobile) as page:
            await page.call(
                "Network.setExtraHTTPHeaders", headers={"authorization": f"Bearer {TOKEN}"}
            )
            await page.call("Page.navigate", url=served.url)
            await page.wait_for("Page.loadEventFired")
            facts = await page.evaluate(
                """({
                  title: document.title,
                  sources: document.querySelectorAll('li[data-source]').length,
                  siteCharts: document.querySelectorAll('figure svg').length,
                  sourceCharts: document.querySelectorAll('li[data-source] svg').length,
                  bars: document.querySelectorAll('svg rect').length,
                  chartWidth: document.querySelector('#chart-polls svg').clientWidth,
                  overflow: document.documentElement.scrollWidth - window.innerWidth,
                  scripts: document.scripts.length,
                })"""
            )
            return page.errors, facts

    errors, facts = asyncio.run(load())
    assert errors == []
    assert facts["title"] == "Status: Test site"
    assert facts["sources"] == 4 and facts["sourceCharts"] == 4
    assert facts["siteCharts"] == 3  # polls per hour, entries per hour, publish duration
    assert int(facts["bars"]) > 60  # type: ignore[call-overload]
    assert float(facts["chartWidth"]) > 200  # type: ignore[arg-type]
    assert facts["overflow"] <= 0, "the page scrolls sideways"  # type: ignore[operator]
    assert facts["scripts"] == 0
