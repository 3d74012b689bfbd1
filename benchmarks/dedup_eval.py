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

Run: ``python benchmarks/dedup_eval.py [--set DIR] [--json]``
Targets (tests/test_dedup_eval.py): precision >= 0.98, easy recall >= 0.95,
no hard negative merged.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

from aggregator.dedup import link_key
from aggregator.model import Item
from aggregator.normalise import html_to_text, normalise_entry
from aggregator.parse import parse_feed, parse_seed
from aggregator.topics import tokens

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SET = REPO / "tests" / "data" / "stories"
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


def evaluate(set_dir: Path, work: Path) -> list[Scores]:
    """Run the pipeline over the set in ``work``; the pipeline's scores first, then baselines."""
    labels = json.loads((set_dir / "labels.json").read_text(encoding="utf-8"))
    items = read_items(set_dir)
    titles = {k: i.title for k, i in items.items()}
    with serve(set_dir / "feeds") as base_url:
        config = write_config(work, base_url, set_dir)
        run_cli(config, "update", "--json")
    clusters = pipeline_clusters(config)
    missing = sorted(set(labels["versions"]) - set(clusters))
    if missing:
        raise RuntimeError(f"versions not stored by the pipeline: {', '.join(missing)}")
    results = [score("aggregator", labels, lambda a, b: clusters[a] == clusters[b], titles)]
    for name, predicate in baselines(items).items():
        results.append(score(name, labels, predicate, titles))
    return results


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate(args.set, Path(tmp))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
