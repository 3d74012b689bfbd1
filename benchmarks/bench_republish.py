"""What one new story costs to publish, against the size of its topic.

Part 1 (in process): a SQLite store holding one topic of N stories (50,000 by
default, max_items 50: 999 archive pages), its export written once. Then one
new story is stored and the topic published again, five times over:

* ``incremental``: :func:`aggregator.publish.incremental.publish`, what the
  daemon runs: wall and CPU time, documents rendered, archive pages kept;
* ``full``: the previous way, every document of the topic rendered again
  (``render_site`` over every story, then ``write_tree``), measured in the
  same run as the peer.

Part 2 (a daemon): ``aggregator run`` on a seed folder of M articles (4,000)
in one topic; once it is at rest, one new seed article is dropped in, and the
CPU time the daemon's whole process tree spends until the article is in the
published feed is read from /proc (with the parse workers kept warm, and
again after they stopped for being idle); five new articles one after
another, each once the last is out (``--repeat``).

Run: ``python benchmarks/bench_republish.py [--stories N] [--seeds M] [--repeat K]
[--skip-store | --skip-daemon]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aggregator.model import Item, NearDupSettings, Origin, TopicSpec  # noqa: E402
from aggregator.publish import Site, TopicFeed, render_site, write_tree  # noqa: E402
from aggregator.publish.incremental import publish  # noqa: E402
from aggregator.store import open_store  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import byte_compile  # noqa: E402
from proctree import children_named, tree_cpu  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SITE = Site(base_url="http://127.0.0.1:8080/", title="Bench")
TOPIC = TopicSpec(name="all", title="All", query="*", max_items=50)
ORIGIN = Origin(source="wire", title="Wire")
WORDS = [
    "talks",
    "minister",
    "border",
    "agreement",
    "energy",
    "grid",
    "election",
    "court",
    "river",
    "city",
]


def _item(n: int) -> Item:
    when = T0 + timedelta(minutes=n)
    text = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(60))
    return Item(
        source="wire",
        identity=f"wire-{n}",
        title=f"Story {n}: {WORDS[n % len(WORDS)]}",
        link=f"https://wire.example.com/{n}",
        content_html=f"<p>{text} {n}.</p><p>Second paragraph of story {n}.</p>",
        summary=f"Summary {n}",
        published=when,
        updated=when,
        origin=ORIGIN,
        tags=("world",),
        content_hash=f"h{n}",
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def part_store(stories: int, rounds: int) -> None:
    matchers = {"all": lambda item: True}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = open_store(f"sqlite:///{folder / 'bench.db'}", near=NearDupSettings(enabled=False))
        t = time.perf_counter()
        for start in range(0, stories, 2000):
            batch = [_item(n) for n in range(start, min(stories, start + 2000))]
            store.ingest(batch, now=T0, matchers=matchers)
        print(f"stored {stories} stories in {time.perf_counter() - t:.1f}s")
        out = folder / "public"
        t, c = time.perf_counter(), _cpu()
        first = publish(out, SITE, [TOPIC], store)
        print(
            f"first publish: {first.rendered} documents in {time.perf_counter() - t:.1f}s "
            f"wall, {_cpu() - c:.1f}s CPU"
        )
        inc: list[tuple[float, float, int, int]] = []
        full: list[tuple[float, float, int]] = []
        for r in range(rounds):
            n = stories + r
            store.ingest([_item(n)], now=T0 + timedelta(minutes=n), matchers=matchers)
            t, c = time.perf_counter(), _cpu()
            report = publish(out, SITE, [TOPIC], store, dirty={"all"})
            inc.append((time.perf_counter() - t, _cpu() - c, report.rendered, report.kept))
            t, c = time.perf_counter(), _cpu()
            docs = render_site(SITE, [TopicFeed(TOPIC, tuple(store.topic_stories("all")))])
            write_tree(folder / "full", docs)
            full.append((time.perf_counter() - t, _cpu() - c, len(docs)))
            del docs
        store.close()
    best_inc = min(inc, key=lambda row: row[1])
    best_full = min(full, key=lambda row: row[1])
    atom = best_inc[2] - 5  # the head's RSS, JSON, HTML, the index and the OPML
    print(f"\none new story in a topic of {stories} stories (best of {rounds}):")
    print(f"{'':14}{'wall ms':>10}{'CPU ms':>10}{'rendered':>10}{'kept':>8}")
    print(
        f"{'incremental':14}{best_inc[0] * 1000:>10.1f}{best_inc[1] * 1000:>10.1f}"
        f"{best_inc[2]:>10}{best_inc[3]:>8}"
    )
    print(
        f"{'full (before)':14}{best_full[0] * 1000:>10.1f}"
        f"{best_full[1] * 1000:>10.1f}{best_full[2]:>10}"
    )
    print(f"Atom documents rendered: {atom} (head + newest archive pages)")
    print(f"CPU ratio incremental/full: {best_inc[1] / best_full[1]:.4f}")
    print(
        "all rounds (wall ms, CPU ms, rendered):",
        [(round(w * 1000), round(c * 1000), d) for w, c, d, _ in inc],
    )


SEED = """Minister {n} talks on the {word} agreement

City {n} (Wire): The minister held talks on the {word} agreement on Monday, officials said,
the {n}th round since the {word} dispute began. {text}
"""


def _seed(folder: Path, n: int) -> None:
    text = " ".join(WORDS[(n * 7 + i) % len(WORDS)] + str(n % (i + 3)) for i in range(80))
    word = WORDS[n % len(WORDS)]
    (folder / f"{n:05d}_{n:016x}.txt").write_text(SEED.format(n=n, word=word, text=text))


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def part_daemon(seeds: int, port: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed_dir = folder / "seeds"
        seed_dir.mkdir()
        for n in range(seeds):
            _seed(seed_dir, n)
        for idle, label in (("1h", "workers warm"), ("2s", "workers stopped (idle)")):
            shutil.rmtree(folder / "var", ignore_errors=True)
            for extra in seed_dir.glob("*.txt"):
                if int(extra.name[:5]) > seeds:
                    extra.unlink()
            runs = _new_seeds(folder, seeds, idle, port, repeat)
            walls, cpus = sorted(w for w, _ in runs), sorted(c for _, c in runs)
            print(
                f"daemon, {seeds} stories in the topic, {label}: one new seed article at a time, "
                f"{repeat} times; in the feed after {_spread(walls, 's')} "
                f"(the first {runs[0][0]:.2f}s), tree CPU {_spread(cpus, 's')}"
            )


def _spread(values: list[float], unit: str) -> str:
    """``median (min-max)`` of sorted ``values``."""
    return f"median {values[len(values) // 2]:.2f}{unit} ({values[0]:.2f}-{values[-1]:.2f})"


def _new_seeds(
    folder: Path, seeds: int, idle: str, port: int, repeat: int
) -> list[tuple[float, float]]:
    """Run the daemon on ``folder``; at rest, add a seed ``repeat`` times, one after another.

    Returns each addition's (wall, tree CPU) until its article is in the feed.
    """
    config = folder / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\nserver: {{port: {port}}}\n"
        f"ingest: {{idle_after: {idle}}}\n"
        "sources:\n  - {name: seeds, path: seeds}\n"
        "topics:\n  - {name: talks, query: talks, max_items: 50}\n"
    )
    feed = folder / "var/public/topics/talks.atom"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )

    def shows(n: int) -> bool:
        return feed.exists() and f"Minister {n} talks" in feed.read_text()

    runs = []
    try:
        _wait(lambda: shows(seeds - 1), 900, "the seeds")
        for n in range(seeds + 1, seeds + 1 + repeat):
            if idle != "1h":
                _wait(lambda: not children_named(proc.pid, "forkserver"), 120, "idle workers")
            time.sleep(2)  # at rest: no publish or write pending
            before = tree_cpu(proc.pid)
            started = time.perf_counter()
            _seed(folder / "seeds", n)
            _wait(lambda n=n: shows(n), 120, "the new seed")
            wall = time.perf_counter() - started
            time.sleep(1.0)  # the publish's last writes
            runs.append((wall, tree_cpu(proc.pid) - before))
        return runs
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=4_000)
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--repeat", type=int, default=5, help="seeds added one after another")
    parser.add_argument("--skip-store", action="store_true", help="only the daemon's part")
    args = parser.parse_args()
    byte_compile(REPO)
    if not args.skip_store:
        part_store(args.stories, args.rounds)
        print()
    if not args.skip_daemon:
        part_daemon(args.seeds, args.port, args.repeat)


if __name__ == "__main__":
    main()
