"""The labelled near-duplicate set is what its corpus says, and big enough to judge dedup by."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from itertools import combinations
from pathlib import Path

from .conftest import DATA

SET = DATA / "stories"


def _build() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("story_set_build", SET / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()  # type: ignore[no-any-return]


def test_written_files_match_the_corpus() -> None:
    files = _build()
    written = {
        str(p.relative_to(SET)): p.read_text(encoding="utf-8")
        for sub in ("feeds", "seeds")
        for p in (SET / sub).iterdir()
    }
    written["labels.json"] = (SET / "labels.json").read_text(encoding="utf-8")
    assert sorted(written) == sorted(files), "run tests/data/stories/build.py"
    stale = [name for name, text in files.items() if written[name] != text]
    assert stale == [], "run tests/data/stories/build.py"


def test_the_set_is_big_and_varied_enough() -> None:
    labels = json.loads((SET / "labels.json").read_text(encoding="utf-8"))
    versions = labels["versions"]
    stories = Counter(v["story"] for v in versions.values())
    assert len(stories) >= 40
    assert len(versions) >= 80
    formats = labels["outlets"]
    assert len(formats) >= 6 and set(formats.values()) == {"atom", "rss", "json"}
    assert len(list((SET / "seeds").glob("*.txt"))) >= 10
    variations = Counter(v["variation"] for v in versions.values())
    for kind in ("copy", "edit", "truncation", "boilerplate", "seed", "later", "paraphrase"):
        assert variations[kind] >= 2, kind
    pairs = {tuple(sorted(p)) for p in labels["hard_negatives"]}
    assert len(pairs) >= 10
    assert all(a in stories and b in stories for a, b in pairs)
    true_pairs = sum(n * (n - 1) // 2 for n in stories.values())
    assert true_pairs >= 50
    assert len(list(combinations(versions, 2))) > true_pairs


def test_seed_files_look_pasted(tmp_path: Path) -> None:
    for path in (SET / "seeds").glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        first, caption = text.splitlines()[:2]
        assert first.endswith(":"), path.name
        assert caption and not caption.endswith(":"), path.name
        assert "(IP): " in text and "Read More:" in text, path.name
        assert "http" not in text, f"{path.name}: a seed carries no link"


def test_the_held_out_set_matches_its_corpus() -> None:
    """tests/data/stories-heldout: written apart for the semantic signal, built the same way."""
    held_out = DATA / "stories-heldout"
    spec = importlib.util.spec_from_file_location("story_set_build", SET / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.build(held_out)
    written = {
        str(p.relative_to(held_out)): p.read_text(encoding="utf-8")
        for sub in ("feeds", "seeds")
        for p in (held_out / sub).iterdir()
    }
    written["labels.json"] = (held_out / "labels.json").read_text(encoding="utf-8")
    assert written == files, "run python tests/data/stories/build.py tests/data/stories-heldout"
    labels = json.loads(files["labels.json"])
    kinds = Counter(v["variation"] for v in labels["versions"].values())
    assert kinds["paraphrase"] >= 8 and len(labels["hard_negatives"]) >= 6
