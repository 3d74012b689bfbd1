"""A worker renews its claim while the update runs: a long update is never started twice."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.store.schema import sources
from aggregator.update import make_fetcher, open_context
from aggregator.workers.queue import JobQueue
from aggregator.workers.worker import QUEUE_OWNER, Worker

from .conftest import pg_database
from .test_remote_pipeline import RSS

pytestmark = pytest.mark.postgres

#: a generous deadline for any one step on a busy 2-core machine
DEADLINE = 60.0


def _claim(url: str) -> tuple[str | None, object]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(sources.c.claimed_by, sources.c.claim_expires_at).where(
                    sources.c.name == "slow"
                )
            ).one()
        return row.claimed_by, row.claim_expires_at
    finally:
        engine.dispose()


async def _until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while not await asyncio.to_thread(check):
        if loop.time() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_a_running_update_keeps_its_claim_past_the_lease(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    answer = threading.Event()

    def slow(request: Request) -> Response:
        answer.wait(DEADLINE)
        return Response(RSS, content_type="application/rss+xml")

    httpserver.expect_request("/slow.rss").respond_with_handler(slow)
    with pg_database() as url:
        config_path = tmp_path / "aggregator.yaml"
        config_path.write_text(
            f"data_dir: {tmp_path / 'var'}\n"
            f"store: {url.replace('postgresql+psycopg://', 'postgresql://')}\n"
            "allow_networks: ['127.0.0.0/8']\n"
            "defaults: {timeout: 100s}\n"
            "workers: {enabled: true}\n"
            f"sources:\n  - {{name: slow, url: '{httpserver.url_for('/slow.rss')}'}}\n"
            "topics:\n  - {name: zebra, query: zebra}\n",
            encoding="utf-8",
        )
        config = load_config(config_path)

        async def scenario() -> None:
            queue = JobQueue(config.store_url, pool_size=2)
            await queue.open()
            ctx = await asyncio.to_thread(open_context, config)
            ctx = dataclasses.replace(ctx, fetcher=make_fetcher(config))
            try:
                worker = Worker(ctx, queue)
                worker.lease = timedelta(seconds=1.5)
                store = ctx.store
                # The dispatch claims it (for one lease), then the update starts and hangs.
                claimed = store.claim_due(ctx.clock(), owner=QUEUE_OWNER, lease=worker.lease)
                assert claimed == ["slow"]
                _, first_expiry = _claim(url)
                fetching = asyncio.create_task(worker.fetch("slow", 0))

                def renewed_past_the_first_lease() -> bool:
                    owner, expiry = _claim(url)
                    return owner == QUEUE_OWNER and expiry > first_expiry < ctx.clock()

                await _until(renewed_past_the_first_lease, "a renewal past the first lease")
                # The first lease is over, the update still runs: nobody may claim it.
                assert store.claim_due(ctx.clock(), owner="next-dispatch", lease=worker.lease) == []
                assert not fetching.done()
                answer.set()
                await asyncio.wait_for(fetching, DEADLINE)
                # The saved state released the claim; a late renewal does not take it again.
                assert _claim(url)[0] is None
                assert (
                    store.renew(["slow"], owner=QUEUE_OWNER, lease=worker.lease, now=ctx.clock())
                    == 0
                )
                assert sum(store.entry_counts().values()) == 2
            finally:
                answer.set()
                if ctx.fetcher is not None:
                    await ctx.fetcher.aclose()
                await asyncio.to_thread(ctx.close)
                await queue.close()

        asyncio.run(scenario())
