"""Poll history and status benchmark: what recording polls costs the writer; what `/status` costs.

Run: ``python benchmarks/bench_status.py [--sources 1000] [--rounds 10] [--batch 100]
[--store sqlite|postgresql://...]``

* **writer**: ``rounds`` passes over ``sources`` sources, each source's state
  saved through ``Store.apply`` in batches of ``batch`` writes per
  transaction (as the one writer does), once with states alone and once with
  a poll per state: the time per write and the ratio (the poll rows ride in
  the same transaction; the extra is one ``executemany`` insert and one
  bounding ``DELETE`` per source in the batch).
* **page**: with the history full (``POLLS_KEPT`` polls for every source),
  the time to read the snapshot (``pipeline.read_status``) and to render the
  page (``render_status_page``), and the page's size.

No entries are written: this is the status machinery alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.model import Outcome, Poll, SourceState
from aggregator.publish import render_status_page
from aggregator.store import SourceWrite, open_store
from aggregator.store.polls import POLLS_KEPT
from aggregator.update import read_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _config(folder: Path, sources: int, store: str) -> Path:
    lines = [f"data_dir: {folder}", f"store: {store}", "sources:"]
    lines += [f"  - {{name: s{i:05}, url: 'https://example.org/{i}.xml'}}" for i in range(sources)]
    lines += ["topics:", "  - {name: all, query: news}"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _writes(names: list[str], at: datetime, *, polls: bool) -> list[SourceWrite]:
    found = []
    for i, name in enumerate(names):
        outcome = Outcome.ERROR if i % 17 == 0 else Outcome.OK
        state = SourceState(name=name, location="https://example.org/", last_attempt_at=at)
        poll = (
            Poll(name, at, outcome, 200, 0.05 + (i % 7) / 10, 20_000, new=i % 3) if polls else None
        )
        found.append(SourceWrite(name, state=state, poll=poll, now=at))
    return found


def _apply_rounds(
    store_url: str, names: list[str], rounds: int, batch: int, *, polls: bool
) -> float:
    store = open_store(store_url)
    try:
        started = time.perf_counter()
        for r in range(rounds):
            at = T0 + timedelta(minutes=30 * r)
            writes = _writes(names, at, polls=polls)
            for i in range(0, len(writes), batch):
                store.apply(writes[i : i + batch], now=at, matchers={})
        return time.perf_counter() - started
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--store", default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        folder = Path(tmp)
        results = {}
        for polls in (False, True):
            sub = folder / ("polls" if polls else "plain")
            sub.mkdir()
            config = load_config(_config(sub, args.sources, args.store))
            store = open_store(config.store_url)
            store.sync_sources(config.sources, now=T0)
            store.close()
            names = [s.name for s in config.sources]
            results[polls] = _apply_rounds(
                config.store_url, names, args.rounds, args.batch, polls=polls
            )
        writes = args.sources * args.rounds
        plain, with_polls = results[False], results[True]
        print(f"writer: {writes} state writes, {args.batch} per transaction ({args.store})")
        print(f"  states alone      {plain:7.2f} s  {plain / writes * 1e6:8.0f} µs/write")
        print(f"  states + polls    {with_polls:7.2f} s  {with_polls / writes * 1e6:8.0f} µs/write")
        print(f"  ratio             {with_polls / plain:7.2f}x")

        # Fill every source's history to the bound, then read and render the page.
        store = open_store(config.store_url)
        try:
            for r in range(args.rounds, POLLS_KEPT + 1):
                at = T0 + timedelta(minutes=30 * r)
                writes_r = _writes(names, at, polls=True)
                for i in range(0, len(writes_r), 500):
                    store.apply(writes_r[i : i + 500], now=at, matchers={})
            now = T0 + timedelta(minutes=30 * POLLS_KEPT + 1)
            started = time.perf_counter()
            status = read_status(config, store, now=now)
            read = time.perf_counter() - started
            started = time.perf_counter()
            page = render_status_page(status, title="bench")
            render = time.perf_counter() - started
        finally:
            store.close()
        rows = sum(len(s.history) for s in status.sources)
        print(f"page: {args.sources} sources, {rows} poll rows")
        print(f"  read_status       {read:7.2f} s")
        print(f"  render            {render:7.2f} s  ({len(page) / 1e6:.1f} MB of HTML)")


if __name__ == "__main__":
    main()
