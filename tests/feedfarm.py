"""A loopback server of many small RSS feeds that counts the requests for each."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from .daemonkit import CountingServer, QuietHandler

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FeedsServer(CountingServer):
    """``feeds`` RSS feeds at ``/fNNN.xml``, counting requests per path, each answered late.

    Feed ``i`` has three items of its own and one shared with feed ``i ± feeds/2``
    (same link: one story for both, whichever worker stores it first).
    """

    def __init__(self, feeds: int, delay: float = 0.02) -> None:
        super().__init__()
        self.feeds = feeds
        self.delay = delay

    def answer(self, handler: QuietHandler) -> None:
        time.sleep(self.delay)
        try:
            body = self.body(int(handler.path.removeprefix("/f").removesuffix(".xml")))
        except ValueError:
            handler.send_error(404)
            return
        handler.send_rss(body)

    def body(self, i: int) -> bytes:
        half = self.feeds // 2
        items = []
        for k in range(3):
            title = f"Karabakh report {i}.{k}" if k == 0 else f"Report {i}.{k}"
            items.append(
                f"<item><guid>f{i}-{k}</guid><title>{title}</title>"
                f"<link>https://news.example/{i}/{k}</link>"
                f"<description>Report {i} {k}: words w{i}x{k} and more w{i}y{k}.</description>"
                f"<pubDate>{format_datetime(T0 + timedelta(minutes=i * 4 + k))}</pubDate></item>"
            )
        shared = i % half
        items.append(
            f"<item><guid>s{shared}</guid><title>Shared note {shared}</title>"
            f"<link>https://shared.example/{shared}</link>"
            f"<description>A note seen twice, number {shared}.</description>"
            f"<pubDate>{format_datetime(T0 - timedelta(minutes=shared))}</pubDate></item>"
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel>'
            f"<title>Feed {i}</title><link>https://news.example/{i}</link><description>d</description>"
            + "".join(items)
            + "</channel></rss>"
        ).encode()

    def paths(self) -> list[str]:
        return [f"/f{i:03d}.xml" for i in range(self.feeds)]
