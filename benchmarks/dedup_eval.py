"""Pairwise precision and recall of story dedup on the labelled set, through the real pipeline.

Serves ``tests/data/stories/feeds/`` from a loopback HTTP server, copies the
seed folder, writes a config naming them, runs ``aggregator update`` and
``aggregator stories --json`` as a user would, and scores every pair of
versions: a pair is predicted "same" when both entries are in one story.

Reports precision and recall overall, recall per variation (a pair counts
for each variation its two versions have, "original" aside), recall on the
easy pairs (no paraphrase), paraphrase recall, hard-negative pairs merged,
every wrong pair, and the naive baselines on the same items: canonical link
alone, 5-word shingle containment >= 0.3, word-set Jaccard >= 0.5.

With ``--orders N`` it instead ingests the versions one at a time, in N
seeded random orders, into a fresh store each, and reports each order's
scores and the min/max over them: the clusters must not depend on which
version arrived first (an entry that bridges two stories merges them).

Run: ``python benchmarks/dedup_eval.py [--set DIR] [--json] [--orders N [--seed S]] [--semantic]``
Targets (tests/test_dedup_eval.py): precision >= 0.98, easy recall >= 0.95,
no hard negative merged.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

from aggregator.model import Item, NearDupSettings
from aggregator.normalise import html_to_text, normalise_entry
from aggregator.parse import parse_feed, parse_seed
from aggregator.store import open_store
from aggregator.stories.dedup import link_key
from aggregator.topics import tokens

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SET = REPO / "tests" / "data" / "stories"
#: the first ingest of an --orders run (each next version one minute later)
ORDER_T0 = datetime(2026, 11, 28, tzinfo=UTC)
EASY = ("copy", "edit", "truncation", "boilerplate", "seed", "later")


@dataclass
class Scores:
    """Pairwise scores of one predictor."""

    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    #: variation -> [found, total] over the true pairs having it
    per_variation: dict[str, list[int]] = field(default_factory=dict)
    easy: list[int] = field(default_factory=lambda: [0, 0])
    paraphrase: list[int] = field(default_factory=lambda: [0, 0])
    hard_negatives_merged: list[tuple[str, str]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def easy_recall(self) -> float:
        return self.easy[0] / self.easy[1] if self.easy[1] else 1.0

    @property
    def paraphrase_recall(self) -> float:
        return self.paraphrase[0] / self.paraphrase[1] if self.paraphrase[1] else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "easy_recall": round(self.easy_recall, 3),
            "paraphrase_recall": round(self.paraphrase_recall, 3),
            "per_variation": {
                k: round(v[0] / v[1], 3) for k, v in sorted(self.per_variation.items())
            },
            "hard_negatives_merged": len(self.hard_negatives_merged),
            "wrong_pairs": self.wrong,
        }


def score(
    name: str,
    labels: dict[str, object],
    same: Callable[[str, str], bool],
    titles: dict[str, str],
) -> Scores:
    """Score a pairwise predicate over every pair of labelled versions."""
    versions: dict[str, dict[str, str]] = labels["versions"]  # type: ignore[assignment]
    hard = {frozenset(p) for p in labels["hard_negatives"]}  # type: ignore[attr-defined]
    s = Scores(name)
    for a, b in combinations(sorted(versions), 2):
        va, vb = versions[a], versions[b]
        truth = va["story"] == vb["story"]
        predicted = same(a, b)
        if truth:
            kinds = {va["variation"], vb["variation"]} - {"original"}
            for kind in kinds:
                slot = s.per_variation.setdefault(kind, [0, 0])
                slot[0] += predicted
                slot[1] += 1
            bucket = s.paraphrase if "paraphrase" in kinds else s.easy
            bucket[0] += predicted
            bucket[1] += 1
        if predicted and truth:
            s.tp += 1
        elif predicted:
            s.fp += 1
            if frozenset((va["story"], vb["story"])) in hard:
                s.hard_negatives_merged.append((a, b))
        elif truth:
            s.fn += 1
        if predicted != truth:
            kind = "merged, different stories" if predicted else "missed, same story"
            s.wrong.append(
                f"{kind} [{va['variation']}/{vb['variation']}]: "
                f"{a} {titles.get(a, '')!r} <> {b} {titles.get(b, '')!r}"
            )
    return s


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve a folder on 127.0.0.1 on a free port; yield its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def write_config(work: Path, base_url: str, set_dir: Path, extra: str = "") -> Path:
    """A config over the set's feeds (served at ``base_url``) and a copy of its seeds."""
    labels = json.loads((set_dir / "labels.json").read_text(encoding="utf-8"))
    suffix = {"atom": ".atom", "rss": ".rss", "json": ".json"}
    seeds = work / "seeds"
    if not seeds.exists():
        shutil.copytree(set_dir / "seeds", seeds)
    lines = [
        f"data_dir: {work / 'var'}",
        "allow_networks: [127.0.0.0/8]",
        "sources:",
        "  - {name: seeds, path: seeds}",
    ]
    for outlet, fmt in sorted(labels["outlets"].items()):
        lines.append(f"  - {{name: {outlet}, url: '{base_url}{outlet}{suffix[fmt]}'}}")
    lines += ["topics:", "  - {name: world, title: World, query: 'said OR says'}"]
    path = work / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def run_cli(config: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"aggregator {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def pipeline_clusters(config: Path) -> dict[str, str]:
    """``source/identity`` -> story id, as ``aggregator stories --json`` lists them."""
    stories = json.loads(run_cli(config, "stories", "--json"))
    return {f"{e['source']}/{e['identity']}": s["id"] for s in stories for e in s["entries"]}


def read_items(set_dir: Path) -> dict[str, Item]:
    """The set's items as the parsers and normaliser make them (for the baselines)."""
    now = datetime.now(UTC)
    items: dict[str, Item] = {}
    for path in sorted((set_dir / "feeds").iterdir()):
        doc = parse_feed(
            path.read_bytes(), url=f"http://127.0.0.1/{path.name}", headers={}, source=path.stem
        )
        for raw in doc.entries:
            item = normalise_entry(raw, source=path.stem, origin=None, now=now)
            items[f"{path.stem}/{item.identity}"] = item
    for path in sorted((set_dir / "seeds").iterdir()):
        doc = parse_seed(path.name, path.read_bytes(), source="seeds", mtime=now, now=now)
        for raw in doc.entries:
            item = normalise_entry(raw, source="seeds", origin=None, now=now)
            items[f"seeds/{item.identity}"] = item
    return items


def baselines(items: dict[str, Item]) -> dict[str, Callable[[str, str], bool]]:
    """The naive predicates the issue measured, over title + body text."""
    words = {k: tokens(f"{i.title}\n{html_to_text(i.content_html)}") for k, i in items.items()}
    sets = {k: set(w) for k, w in words.items()}
    shingles = {k: {tuple(w[n : n + 5]) for n in range(len(w) - 4)} for k, w in words.items()}
    links = {k: link_key(i) for k, i in items.items()}

    def link(a: str, b: str) -> bool:
        return links[a] is not None and links[a] == links[b]

    def containment(a: str, b: str) -> bool:
        small = min(len(shingles[a]), len(shingles[b])) or 1
        return len(shingles[a] & shingles[b]) / small >= 0.3

    def jaccard(a: str, b: str) -> bool:
        return len(sets[a] & sets[b]) / (len(sets[a] | sets[b]) or 1) >= 0.5

    return {
        "baseline: canonical link only": link,
        "baseline: 5-word shingle containment >= 0.3": containment,
        "baseline: word-set Jaccard >= 0.5": jaccard,
    }


def evaluate(set_dir: Path, work: Path, *, semantic: bool = False) -> list[Scores]:
    """Run the pipeline over the set in ``work``; the pipeline's scores first, then baselines.

    ``semantic``: with ``dedup: {semantic: true}`` (paraphrases joined).
    """
    labels = json.loads((set_dir / "labels.json").read_text(encoding="utf-8"))
    items = read_items(set_dir)
    titles = {k: i.title for k, i in items.items()}
    with serve(set_dir / "feeds") as base_url:
        extra = "dedup: {semantic: true}\n" if semantic else ""
        config = write_config(work, base_url, set_dir, extra)
        run_cli(config, "update", "--json")
    clusters = pipeline_clusters(config)
    missing = sorted(set(labels["versions"]) - set(clusters))
    if missing:
        raise RuntimeError(f"versions not stored by the pipeline: {', '.join(missing)}")
    results = [score("aggregator", labels, lambda a, b: clusters[a] == clusters[b], titles)]
    for name, predicate in baselines(items).items():
        results.append(score(name, labels, predicate, titles))
    return results


def order_clusters(
    items: dict[str, Item], order: list[str], db: Path, *, semantic: bool = False
) -> dict[str, str]:
    """Ingest the items one by one in ``order`` into a fresh SQLite store; key -> story id.

    Each item is its own transaction, as if every version arrived in a poll
    of its own, so the order decides which story each version meets first.
    """
    store = open_store(f"sqlite:///{db}", near=NearDupSettings(semantic=semantic))
    try:
        for n, key in enumerate(order):
            store.ingest([items[key]], now=ORDER_T0 + timedelta(minutes=n), matchers={})
        rows = store.story_rows()
    finally:
        store.close()
    return {f"{e['source']}/{e['identity']}": s["id"] for s in rows for e in s["entries"]}


@dataclass(frozen=True)
class OrderRun:
    """The pipeline's scores over one seeded random arrival order."""

    seed: int
    scores: Scores
    #: ``source/identity`` -> story id
    clusters: dict[str, str]

    @property
    def stories(self) -> int:
        return len(set(self.clusters.values()))

    def partition(self) -> frozenset[frozenset[str]]:
        """The versions grouped by story, ids aside (they depend on who came first)."""
        groups: dict[str, set[str]] = {}
        for key, story in self.clusters.items():
            groups.setdefault(story, set()).add(key)
        return frozenset(frozenset(g) for g in groups.values())


def evaluate_orders(
    set_dir: Path, work: Path, seeds: Sequence[int], *, semantic: bool = False
) -> list[OrderRun]:
    """Score the store's clustering over seeded random arrival orders of the labelled versions.

    The versions are parsed and normalised as the pipeline does
    (:func:`read_items`), shuffled with ``random.Random(seed)``, and ingested
    one at a time; the clusters must not depend on which came first.
    """
    labels = json.loads((set_dir / "labels.json").read_text(encoding="utf-8"))
    items = read_items(set_dir)
    missing = sorted(set(labels["versions"]) - set(items))
    if missing:
        raise RuntimeError(f"versions the parsers do not yield: {', '.join(missing)}")
    titles = {k: i.title for k, i in items.items()}
    runs = []
    for seed in seeds:
        order = sorted(items)
        random.Random(seed).shuffle(order)
        clusters = order_clusters(items, order, work / f"order-{seed}.db", semantic=semantic)
        same = functools.partial(_same_story, clusters)
        runs.append(OrderRun(seed, score("aggregator", labels, same, titles), clusters))
    return runs


def _same_story(clusters: dict[str, str], a: str, b: str) -> bool:
    return clusters[a] == clusters[b]


def order_report(runs: Sequence[OrderRun]) -> str:
    """Per-order scores, min/max of each, wrong pairs all orders share, then each order's own."""
    out = []
    for run in runs:
        s = run.scores
        out.append(
            f"order seed {run.seed}: {run.stories} stories, precision {s.precision:.3f}, "
            f"recall {s.recall:.3f} (easy {s.easy_recall:.3f}, paraphrase "
            f"{s.paraphrase_recall:.3f}), hard negatives merged {len(s.hard_negatives_merged)}"
        )
    out.append("")
    for name, get in (
        ("precision", lambda s: s.precision),
        ("recall", lambda s: s.recall),
        ("easy recall", lambda s: s.easy_recall),
        ("paraphrase recall", lambda s: s.paraphrase_recall),
        ("hard negatives merged", lambda s: float(len(s.hard_negatives_merged))),
    ):
        values = [get(r.scores) for r in runs]
        out.append(f"{name} over {len(runs)} orders: min {min(values):.3f}, max {max(values):.3f}")
    common = set.intersection(*(set(r.scores.wrong) for r in runs)) if runs else set()
    out.append("")
    out.append(f"wrong pairs in every order ({len(common)}):")
    out.extend(f"  {w}" for w in sorted(common))
    for run in runs:
        extra = [w for w in run.scores.wrong if w not in common]
        if extra:
            out.append("")
            out.append(f"order seed {run.seed} also wrong ({len(extra)}):")
            out.extend(f"  {w}" for w in extra)
    return "\n".join(out)


def report(results: list[Scores]) -> str:
    out = []
    for s in results:
        out.append(
            f"{s.name}: precision {s.precision:.3f}, recall {s.recall:.3f} "
            f"(easy {s.easy_recall:.3f}, paraphrase {s.paraphrase_recall:.3f}), "
            f"hard negatives merged {len(s.hard_negatives_merged)}"
        )
    main = results[0]
    out.append("")
    out.append("aggregator recall per variation:")
    for kind, (found, total) in sorted(main.per_variation.items()):
        out.append(f"  {kind:12} {found:3}/{total:<3} {found / total:.3f}")
    out.append("")
    out.append(f"aggregator wrong pairs ({len(main.wrong)}):")
    out.extend(f"  {w}" for w in main.wrong)
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--orders",
        type=int,
        default=0,
        metavar="N",
        help="instead, ingest the versions in N seeded random orders and report min/max",
    )
    parser.add_argument("--seed", type=int, default=1, help="first seed of --orders")
    parser.add_argument(
        "--semantic", action="store_true", help="with dedup: {semantic: true} (paraphrases)"
    )
    args = parser.parse_args()
    if args.orders:
        with tempfile.TemporaryDirectory() as tmp:
            seeds = range(args.seed, args.seed + args.orders)
            runs = evaluate_orders(args.set, Path(tmp), seeds, semantic=args.semantic)
        if args.json:
            print(json.dumps([{"seed": r.seed, **r.scores.as_dict()} for r in runs], indent=2))
        else:
            print(order_report(runs))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate(args.set, Path(tmp), semantic=args.semantic)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
