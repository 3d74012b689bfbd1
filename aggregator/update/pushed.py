"""A feed body a WebSub hub pushed, ingested as its source's update: same engine, no fetch.

The body goes through the CPU stage and the one writer exactly as a polled
one does (parse, normalise, dedup, topics), so a story pushed and later
polled is the same story. The source's validators are left alone: the next
poll still asks the server what changed since the last poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.model import Outcome, SourceResult, SourceSpec, SourceState
from aggregator.update.context import Context, make_fetcher
from aggregator.update.kinds import Attempt, Hints
from aggregator.update.remote import digest_response
from aggregator.update.runner import update_source
from aggregator.update.write import Write

__all__ = ["PushedFeed", "ingest_pushed"]


@dataclass(frozen=True, slots=True)
class PushedFeed:
    """The updater of one pushed body (a :class:`~aggregator.update.kinds.SourceUpdater`)."""

    body: bytes
    #: the distribution's headers, names lower-case (its Content-Type tells the format)
    headers: Mapping[str, str]
    remote = True

    def lane(self, spec: SourceSpec) -> str | None:
        return urlsplit(spec.location).hostname

    def watched(self, spec: SourceSpec) -> Path | None:
        return None

    async def update(
        self, spec: SourceSpec, ctx: Context, *, now: datetime, state: SourceState, write: Write
    ) -> Attempt:
        from aggregator.sources.http import FetchResponse  # httpx, with the first push

        url = state.self_url or state.discovered_feed or state.location
        resp = FetchResponse(
            url=url,
            status=200,
            body=self.body,
            headers=dict(self.headers),
            etag=state.etag,
            last_modified=state.last_modified,
            permanent_redirect=None,
            redirects=(),
            elapsed=0.0,
        )
        if ctx.fetcher is None:
            async with make_fetcher(ctx.config) as fetcher:
                digest, _, hints, _ = await digest_response(spec, ctx, fetcher, resp, now, Hints())
        else:
            digest, _, hints, _ = await digest_response(spec, ctx, ctx.fetcher, resp, now, Hints())
        result = SourceResult(
            source=spec.name,
            outcome=Outcome.OK,
            problems=digest.problems,
            http_status=200,
            received=len(self.body),
            fast_path=digest.fast_path,
        )
        state = replace(state, problems=tuple(digest.problems))
        return Attempt(
            result, state, replace(hints, ttl=digest.ttl), replace(write, records=digest.records)
        )


async def ingest_pushed(
    spec: SourceSpec, ctx: Context, body: bytes, headers: Mapping[str, str]
) -> SourceResult:
    """Ingest a pushed body as the source's update; never raises for a problem of the body."""
    return await update_source(spec, ctx, updater=PushedFeed(body, headers))
