"""Scale-out benchmark: the first pass over N feeds, embedded, on PostgreSQL, and with 1-3 workers.

Run: ``python benchmarks/bench_workers.py [--feeds 1000] [--workers 1,2,3] [--seed 1]
[--concurrency 32] [--write-feeds 200] [--prepared] [--skip-update] [--json FILE]``

In one run, on one corpus:

* **update, sqlite**: ``aggregator update`` on a SQLite file (the embedded engine);
* **update, postgresql**: ``aggregator update`` on a fresh PostgreSQL database
  (the same one process, no job queue);
* **W workers**: the passes below;
* **W workers, parse prepared** (``--prepared``): the same passes with the parse
  stage stubbed: every served feed is parsed once by this script before the
  runs, and the workers' ``digest_feed`` returns those digests
  (``benchmarks/prepared/sitecustomize.py``, on their ``PYTHONPATH`` only);
  fetching, dispatch, claims and the store's writes are all real;
* **write path**: :mod:`bench_write_path` (the store alone, items pre-parsed:
  1 and 2 concurrent writers), so the store's concurrency is measured apart
  from the parse stage, which on this 2-core machine competes with the
  writers for the cores.

On the ingest benchmark's seeded corpus (``ingest_corpus.py``, served on
loopback by ``ingest_server.py``: RSS/Atom/JSON Feed, ETags, gzip, slow feeds,
404s, 500s and feeds that never answer), for each worker count W:

* a fresh PostgreSQL database (``$AGGREGATOR_BENCH_PG``, default
  ``postgresql://postgres@127.0.0.1:5432/postgres``, used to create and drop it);
* W ``aggregator worker --concurrency C`` subprocesses started at once on a
  config with ``workers.enabled`` and ``dispatch_every: 1s``;
* wall time from the launch until every source has been attempted (its
  ``last_attempt_at`` set; read from the database every 0.2 s), and until
  the first source was (start-up: imports, migrations, queue schema, first dispatch);
* entries stored and entries/s; then SIGTERM, which each worker must answer with 0.

The scaling ratio is wall(1 worker) / wall(W workers). Every client timeout is
10 s and the never-answering feeds are held 12 s, so no pass is shorter than that.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench_write_path  # noqa: E402
import ingest_corpus  # noqa: E402
from bench_ingest import TIMEOUT, TOPICS  # noqa: E402
from ingest_server import FeedServer  # noqa: E402
from installed import byte_compile  # noqa: E402

ADMIN = os.environ.get("AGGREGATOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Pass:
    #: 0: ``aggregator update`` (no queue)
    workers: int
    wall_s: float
    startup_s: float
    sources: int
    entries: int
    entries_per_s: float
    exit_codes: list[int]


def write_config(
    folder: Path, urls: list[str], store: str, concurrency: int, *, workers: bool = True
) -> Path:
    lines = [
        f"data_dir: {json.dumps(str(folder / 'var'))}",
        f"store: {store}",
        "allow_networks: ['127.0.0.0/8']",
        f"defaults: {{timeout: {TIMEOUT:g}s}}",
        f"fetch: {{max_connections: {concurrency}, max_per_host: {concurrency}}}",
    ]
    if workers:
        lines.append(f"workers: {{enabled: true, dispatch_every: 1s, concurrency: {concurrency}}}")
    lines.append("sources:")
    lines += [f"  - {{name: f{i:06d}, url: {json.dumps(url)}}}" for i, url in enumerate(urls)]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n" + TOPICS, encoding="utf-8")
    return path


def count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(sql).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def update_pass(work: Path, urls: list[str], backend: str, concurrency: int) -> Pass:
    """``aggregator update`` once over every feed, on a SQLite file or a new PostgreSQL database."""
    folder = work / f"update-{backend}"
    folder.mkdir()
    name = f"aggregator_bench_{uuid.uuid4().hex[:10]}"
    if backend == "postgresql":
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = "sqlite"  # data_dir/aggregator.db
    config = write_config(folder, urls, url, concurrency, workers=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "aggregator", "--config", str(config), "update", "--json"]
    try:
        started = time.perf_counter()
        with (folder / "update.log").open("wb") as log:
            code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=log, env=env).returncode
        wall = time.perf_counter() - started
        if backend == "postgresql":
            entries = count(url, "SELECT count(*) FROM entries")
        else:
            with sqlite3.connect(folder / "var" / "aggregator.db") as db:
                entries = int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        if backend == "postgresql":
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result = Pass(0, wall, 0.0, len(urls), entries, entries / wall, [code])
    print(
        f"  update on {backend}: {wall:.1f} s, {entries} entries, "
        f"{result.entries_per_s:.0f} entries/s, exit code {code}",
        file=sys.stderr,
    )
    return result


PREPARED_PATH = HERE / "prepared"


def prepare(work: Path, urls: list[str], concurrency: int) -> Path:
    """Every served feed parsed here, once: ``{sha256 of the body: its digest}``, pickled.

    The bodies are fetched as a worker's fetcher gets them (decoded), and parsed
    with the sources' specs and topics from the benchmark's own config.
    """
    import hashlib
    import pickle
    from datetime import UTC, datetime

    import httpx

    from aggregator.config import load_config
    from aggregator.engine.work import digest_feed

    folder = work / "prepare"
    folder.mkdir()
    config = load_config(write_config(folder, urls, "sqlite", concurrency, workers=False))
    now = datetime.now(UTC)
    digests: dict[str, object] = {}
    started = time.perf_counter()
    with httpx.Client(timeout=TIMEOUT) as client:
        for spec in config.sources:
            try:
                resp = client.get(spec.location)
            except httpx.HTTPError:
                continue  # a feed that never answers: the workers time out on it too
            if resp.status_code != 200:
                continue
            try:
                digest = digest_feed(
                    resp.content,
                    spec=spec,
                    url=str(resp.url),
                    headers=dict(resp.headers),
                    now=now,
                    topics=config.topics,
                    near=config.dedup,
                )
            except Exception:  # a feed that does not parse: the workers parse it and fail
                continue
            digests[hashlib.sha256(resp.content).hexdigest()] = digest
    path = work / "prepared.pickle"
    path.write_bytes(pickle.dumps(digests, protocol=pickle.HIGHEST_PROTOCOL))
    print(
        f"  prepared {len(digests)} feeds in {time.perf_counter() - started:.1f} s "
        f"({path.stat().st_size / 2**20:.1f} MiB)",
        file=sys.stderr,
    )
    return path


def one_pass(
    work: Path, urls: list[str], workers: int, concurrency: int, prepared: Path | None = None
) -> Pass:
    name = f"aggregator_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    folder = work / (f"w{workers}" if prepared is None else f"w{workers}-prepared")
    folder.mkdir()
    config = write_config(folder, urls, url, concurrency)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if prepared is not None:
        env["PYTHONPATH"] = f"{PREPARED_PATH}{os.pathsep}{REPO}"
        env["AGGREGATOR_BENCH_PREPARED"] = str(prepared)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.perf_counter()
        for n in range(workers):
            with (folder / f"worker{n}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "aggregator", "--config", str(config), "worker"],
                        stdout=log,
                        stderr=log,
                        env=env,
                    )
                )
        attempted = "SELECT count(*) FROM sources WHERE last_attempt_at IS NOT NULL"
        startup = None
        while True:
            done = count(url, attempted)
            if done and startup is None:
                startup = time.perf_counter() - started
            if done >= len(urls):
                break
            dead = [p.args for p in procs if p.poll() is not None]
            if dead:
                raise SystemExit(f"a worker exited early: see {folder}/worker*.log")
            time.sleep(0.2)
        wall = time.perf_counter() - started
        entries = count(url, "SELECT count(*) FROM entries")
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result = Pass(workers, wall, startup or wall, len(urls), entries, entries / wall, codes)
    print(
        f"  {workers} worker(s){'' if prepared is None else ', parse prepared'}: {wall:.1f} s "
        f"(first source after {result.startup_s:.1f} s), "
        f"{entries} entries, {result.entries_per_s:.0f} entries/s, exit codes {codes}",
        file=sys.stderr,
    )
    return result


def table(feeds: int, updates: dict[str, Pass], passes: list[Pass]) -> None:
    """The runs' rates, against one worker and (when it ran) the embedded update."""
    embedded = updates["sqlite"].entries_per_s if "sqlite" in updates else None
    print(f"\nfirst pass over {feeds} feeds, {os.cpu_count()} cores")
    header = ("run", "wall s", "start s", "entries", "entries/s", "vs 1 worker", "vs sqlite")
    print("{:>20} {:>7} {:>7} {:>8} {:>9} {:>11} {:>9}".format(*header))
    one = passes[0].entries_per_s
    rows = [(f"update, {backend}", p) for backend, p in updates.items()]
    rows += [(f"{p.workers} worker(s)", p) for p in passes]
    for label, p in rows:
        versus = f"{p.entries_per_s / embedded:>9.2f}" if embedded else f"{'-':>9}"
        print(
            f"{label:>20} {p.wall_s:>7.1f} {p.startup_s:>7.1f} {p.entries:>8} "
            f"{p.entries_per_s:>9.0f} {p.entries_per_s / one:>11.2f} {versus}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,3", help="worker counts, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32, help="updates per worker")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--write-feeds", type=int, default=200, help="feeds of the write-path run (0: skip it)"
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="also run the workers with the parse stage stubbed: every feed parsed before "
        "the run (benchmarks/prepared/sitecustomize.py)",
    )
    parser.add_argument(
        "--skip-update", action="store_true", help="no `aggregator update` passes (workers only)"
    )
    args = parser.parse_args()
    byte_compile(REPO)
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        ingest_corpus.generate(corpus, feeds=args.feeds, seed=args.seed)
        with FeedServer(corpus) as server:
            print(f"{args.feeds} feeds on {len(server.addresses)} loopback hosts", file=sys.stderr)
            updates = {
                backend: update_pass(work, server.urls, backend, args.concurrency)
                for backend in (() if args.skip_update else ("sqlite", "postgresql"))
            }
            passes = [one_pass(work, server.urls, w, args.concurrency) for w in counts]
            stubbed: list[Pass] = []
            if args.prepared:
                digests = prepare(work, server.urls, args.concurrency)
                stubbed = [
                    one_pass(work, server.urls, w, args.concurrency, digests) for w in counts
                ]
    table(args.feeds, updates, passes)
    if stubbed:
        print("\nthe same, the parse stage stubbed (every feed parsed before the run)")
        table(args.feeds, {}, stubbed)
    if args.write_feeds:
        bench_write_path.report(bench_write_path.measure(args.write_feeds, 58, 10))
    if args.json:
        results = [asdict(p) for p in (*updates.values(), *passes, *stubbed)]
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
