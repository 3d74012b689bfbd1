"""Small builders of model values for tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.model import Item, Origin, SourceKind, SourceSpec

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_item(
    identity: str = "e1",
    *,
    source: str = "wire",
    title: str = "Talks on Nagorno-Karabakh resume in Geneva",
    body: str = (
        "Negotiators from both sides met on Monday to discuss the future of the region "
        "and its people."
    ),
    link: str | None = None,
    published: datetime = T0,
    updated: datetime | None = None,
    tags: tuple[str, ...] = (),
    **extra: Any,
) -> Item:
    content_html = f"<p>{body}</p>"
    digest = hashlib.sha256(f"{title}\n{link}\n{content_html}\n{tags}".encode()).hexdigest()
    return Item(
        source=source,
        identity=identity,
        title=title,
        link=link,
        content_html=content_html,
        summary=body,
        published=published,
        updated=updated or published,
        tags=tags,
        origin=Origin(
            source=source, title=source.title(), link=f"https://{source}.example/", feed_id=None
        ),
        content_hash=digest,
        **extra,
    )


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def url_spec(name: str) -> SourceSpec:
    """A remote source ``https://example.org/<name>`` polled every 30 minutes."""
    return SourceSpec(
        name=name,
        kind=SourceKind.URL,
        location=f"https://example.org/{name}",
        interval=timedelta(minutes=30),
        timeout=timedelta(seconds=20),
        max_bytes=2**20,
    )
