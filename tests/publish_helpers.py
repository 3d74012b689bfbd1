"""Story fixtures and a real uvicorn server for the publish/web tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.model import Dateline, Item, Origin, Related, Story, TopicSpec

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

WIRE = Origin(
    source="wire",
    title="Example Wire",
    link="https://wire.example.com/",
    feed_id="https://wire.example.com/world.rss",
)
SEEDS = Origin(source="seeds", title="Local seeds")


def make_story(
    n: int,
    *,
    link: bool = True,
    content: str | None = None,
    updated: datetime | None = None,
    extra: bool = True,
) -> Story:
    """Story number ``n``: published ``n`` hours after T0, varied fields."""
    published = T0 + timedelta(hours=n)
    body = (
        content
        if content is not None
        else (
            f"<p>Body of story {n} &amp; more: Nagorno-Karabakh talks resume.</p>"
            f"<p>Second paragraph {n}.</p>"
        )
    )
    item = Item(
        source="wire" if n % 2 else "seeds",
        identity=f"id-{n}",
        title=f'Story {n}: talks <resume> & "quotes"',
        link=f"https://wire.example.com/story/{n}?x=1&y=2" if link else None,
        content_html=body,
        summary=f"Summary of story {n}.",
        published=published,
        updated=published,
        authors=(f"Author {n % 3}",) if extra and n % 3 else (),
        tags=("world", f"tag{n % 4}") if extra else (),
        language="en" if n % 5 == 0 else None,
        dateline=Dateline("Qom", "IP") if extra and n % 2 == 0 else None,
        related=(
            (Related("Other headline", "https://wire.example.com/other"), Related("No link"))
            if extra and n % 3 == 0
            else ()
        ),
        origin=WIRE if n % 2 else SEEDS,
        content_hash=f"h{n}",
    )
    return Story(
        id=f"tag:aggregator.example,2024:story/{n}",
        item=item,
        published=published,
        updated=updated or published + timedelta(minutes=5),
        first_seen=published,
        provenance=(WIRE, SEEDS) if n % 2 else (SEEDS,),
    )


def make_topic(name: str = "caucasus", **kwargs: Any) -> TopicSpec:
    kwargs.setdefault("title", name.title())
    kwargs.setdefault("query", "Nagorno-Karabakh")
    kwargs.setdefault("description", f"News about {name}")
    return TopicSpec(name=name, **kwargs)


def free_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 with a kernel-chosen port.

    It listens before the server starts, so clients connecting early simply
    wait in the backlog: no sleep-and-retry is needed to sync with startup.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@dataclass
class RunningServer:
    base_url: str
    port: int


@contextmanager
def run_server(app: Any, sock: socket.socket, **options: Any) -> Iterator[RunningServer]:
    """Run ``app`` on uvicorn in a thread on ``sock``; stop it on exit.

    ``options`` go to :func:`aggregator.web.serve` (e.g. ``fast_path=False``).
    """
    from aggregator.web import serve

    port = sock.getsockname()[1]
    server = serve(app, host="127.0.0.1", port=port, **options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}/", port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
