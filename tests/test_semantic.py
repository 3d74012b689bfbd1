"""The semantic signal: the shipped model loaded offline, candidates, the decision, languages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.model import Item, NearDupSettings
from aggregator.store import open_store
from aggregator.store.schema import story_joins, story_vectors
from aggregator.stories import semantic, specifics
from aggregator.stories.vecindex import VectorIndex

from .conftest import REPO, run_cli

T0 = datetime(2026, 11, 14, 9, 0, tzinfo=UTC)

ORIGINAL = (
    "Rotterdam dockworkers begin 48-hour strike over pay",
    "Dockworkers at the Port of Rotterdam walked off the job at 6 a.m. on Saturday at the start "
    "of a 48-hour strike over pay, halting container handling at Europe's largest port. The FNV "
    "union said about 2,800 workers at the Maasvlakte terminals joined the stoppage after talks "
    "with employers broke down on Thursday. The union is demanding a 7% pay rise and earlier "
    "retirement for crane operators on night shifts.",
)
PARAPHRASE = (
    "Rotterdam port grinds to a halt as dockers strike",
    "Container handling at the Port of Rotterdam stopped on Saturday morning when dockworkers "
    "began a two-day walkout over wages, the biggest disruption at Europe's largest port in "
    "years. Some 2,800 workers at the Maasvlakte terminals stayed away from 6 a.m., according "
    "to the FNV union, which wants a 7% raise and earlier retirement for night-shift crane "
    "operators. Negotiations with employers collapsed on Thursday.",
)
FOLLOW_UP = (
    "Rotterdam port strike called off after pay deal",
    "The FNV union called off the strike at the Port of Rotterdam on Monday after reaching a pay "
    "deal with employers, ending a stoppage that had halted container handling at the Maasvlakte "
    "terminals for two days. Under the agreement, about 2,800 dockworkers will get a 6% pay rise "
    "over two years and crane operators on night shifts may retire a year earlier.",
)


def _item(
    source: str,
    identity: str,
    text: tuple[str, str],
    *,
    at: datetime = T0,
    language: str | None = "en",
) -> Item:
    title, body = text
    return Item(
        source=source,
        identity=identity,
        title=title,
        link=f"https://{source}.example/{identity}",
        content_html=f"<p>{body}</p>",
        summary=body[:200],
        published=at,
        updated=at,
        language=language,
        content_hash=f"{source}-{identity}-{hash(text)}",
    )


# -- the model, offline -----------------------------------------------------------


_NO_NETWORK = """
import json, socket, sys

class Refused(OSError):
    pass

def refuse(*args, **kwargs):
    raise Refused("a socket was opened")

socket.socket = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from aggregator.stories import semantic
model = semantic.load()
vectors = model.embed(["Rotterdam dockworkers strike", "Dockers walk out in Rotterdam"])
print(json.dumps({
    "cosine": semantic.cosine(*vectors),
    "loaded": sorted(m for m in ("requests", "huggingface_hub", "wordllama") if m in sys.modules),
}))
"""


def test_the_model_loads_from_the_shipped_files_without_opening_a_socket(tmp_path: Path) -> None:
    # A fresh interpreter: nothing loaded before, a HOME with no cache to fall back on.
    out = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cosine"] > 0.5
    # wordllama's own loader (and the download code behind it) is never imported
    assert result["loaded"] == []
    assert not (tmp_path / ".cache").exists()


def test_the_model_loads_in_process_with_sockets_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened while loading the model")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = semantic.Model(*semantic.model_files())
    assert model.nbytes > 10_000_000
    [vector] = model.embed(["Sakurajima erupts"])
    assert len(vector.values) == semantic.DIM and len(vector.code) == semantic.DIM // 8


def test_a_missing_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(semantic.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(semantic.MissingModel, match=r"pip install 'aggregator\[semantic\]'"):
        semantic.model_files()


def test_paraphrases_score_above_unrelated_stories_and_quantisation_keeps_the_cosine() -> None:
    import numpy as np

    model = semantic.load()
    texts = [" ".join(ORIGINAL), " ".join(PARAPHRASE), "Sakurajima volcano erupts near Kagoshima"]
    original, paraphrase, unrelated = model.embed(texts)
    assert semantic.cosine(original, paraphrase) > 0.8
    assert semantic.cosine(original, unrelated) < 0.6
    # The stored int8 vector gives the float cosine within a few thousandths.
    x = np.frombuffer(original.values, dtype=np.int8) * original.scale
    y = np.frombuffer(paraphrase.values, dtype=np.int8) * paraphrase.scale
    exact = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
    assert abs(exact - semantic.cosine(original, paraphrase)) < 0.01


# -- specifics --------------------------------------------------------------------


def test_specifics_read_numbers_names_and_quotes() -> None:
    found = specifics.specifics(
        "Volunteers save 25 whales near Strahan",
        "Twenty-five pilot whales were refloated on Sunday, officials said. "
        'The minister called it "a remarkable effort" at Macquarie Harbour, where 2,800 '
        "people live.",
    )
    assert {"25", "2800"} <= found.numbers
    assert {"strahan", "macquarie", "harbour"} <= found.names
    assert "sunday" not in found.names and "the" not in found.names
    assert found.quotes == frozenset({"a remarkable effort"})


def test_specifics_tell_a_follow_up_from_a_paraphrase() -> None:
    original = specifics.specifics(*ORIGINAL)
    assert specifics.agree(original, specifics.specifics(*PARAPHRASE)).same
    other = specifics.specifics(
        "Fire destroys warehouse in Botlek",
        "A fire destroyed a warehouse storing tyres in the Botlek area on Tuesday night, the "
        "Rijnmond safety region said; 120 firefighters fought it for 5 hours.",
    )
    agreement = specifics.agree(original, other)
    assert not agreement.same and agreement.shared_names < 2


# -- the index --------------------------------------------------------------------


def test_the_index_searches_the_window_and_the_language_only() -> None:
    index = VectorIndex()
    near = bytes([0b1111_0000] * 32)
    far = bytes([0b0000_1111] * 32)
    index.add(1, near, 1000.0, "en")
    index.add(2, far, 1000.0, "en")
    index.add(3, near, 5000.0, "en")  # outside the window
    index.add(4, near, 1000.0, "fr")  # another language
    assert index.nearest(near, language="en", since=0, until=2000, limit=5) == [1, 2]
    assert index.nearest(near, language="en", since=0, until=2000, limit=1) == [1]
    assert index.nearest(near, language="de", since=0, until=9000, limit=5) == []
    index.discard(1)
    assert index.nearest(near, language="en", since=0, until=2000, limit=5) == [2]
    assert len(index) == 3 and index.nbytes > 0
    # In bulk, replacing what a key held; the rows of discarded keys are compacted away.
    many = list(range(10, 3000))
    index.extend(many, far * len(many), [1000.0] * len(many), ["en"] * len(many))
    index.extend([2], near, [1000.0], ["en"])
    for key in many[:2500]:
        index.discard(key)
    index.extend([5000], near, [1000.0], ["en"])
    found = index.nearest(near, language="en", since=0, until=2000, limit=3)
    assert found[:2] == [2, 5000] and len(index) == 3 + 490 + 1


# -- the store ----------------------------------------------------------------------


def _joins(store: object) -> dict[str, dict[str, object]]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(story_joins)).all()
    return {r.source: dict(r._mapping) for r in rows}


def test_a_paraphrase_joins_with_its_scores_recorded(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", near=NearDupSettings(semantic=True))
    try:
        store.ingest([_item("wire", "w1", ORIGINAL)], now=T0, matchers={})
        later = T0 + timedelta(hours=3)
        store.ingest([_item("meridian", "m1", PARAPHRASE, at=later)], now=later, matchers={})
        # The follow-up two days later reads alike, but the window (36 h) keeps it apart.
        after = T0 + timedelta(days=2)
        store.ingest([_item("harbour", "h1", FOLLOW_UP, at=after)], now=after, matchers={})
        rows = store.story_rows()
        joins = _joins(store)
    finally:
        store.close()
    assert len(rows) == 2
    assert {e["source"] for e in rows[0]["entries"]} == {"wire", "meridian"}
    joined = joins["meridian"]
    assert joined["rule"] == "semantic"
    assert isinstance(joined["similarity"], float) and joined["similarity"] >= 0.78
    assert "similarity" in str(joined["reason"]) and "names" in str(joined["reason"])
    assert joins["harbour"]["rule"] == "new"


def test_with_the_signal_off_nothing_is_embedded_or_joined(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", near=NearDupSettings())
    try:
        store.ingest([_item("wire", "w1", ORIGINAL)], now=T0, matchers={})
        store.ingest([_item("meridian", "m1", PARAPHRASE)], now=T0, matchers={})
        with store.engine.connect() as conn:
            vectors = conn.execute(sa.select(sa.func.count()).select_from(story_vectors)).scalar()
        assert len(store.story_rows()) == 2
    finally:
        store.close()
    assert vectors == 0


@pytest.mark.parametrize(
    ("languages", "settings", "joined"),
    [
        # the model knows English only: another language keeps today's rules
        (("fr", "fr"), NearDupSettings(semantic=True, semantic_languages=("en",)), False),
        # never across languages, unless asked
        (("en", "de"), NearDupSettings(semantic=True, semantic_languages=("en", "de")), False),
        (
            ("en", "de"),
            NearDupSettings(semantic=True, semantic_languages=("en", "de"), cross_language=True),
            True,
        ),
        # a language the source did not say and detection could not tell
        ((None, None), NearDupSettings(semantic=True), False),
        (("en-GB", "en-US"), NearDupSettings(semantic=True), True),
    ],
)
def test_the_signal_applies_only_where_the_model_knows_the_language(
    tmp_path: Path,
    languages: tuple[str | None, str | None],
    settings: NearDupSettings,
    joined: bool,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", near=settings)
    try:
        first = _item("wire", "w1", ORIGINAL, language=languages[0])
        second = _item("meridian", "m1", PARAPHRASE, language=languages[1])
        store.ingest([first], now=T0, matchers={})
        store.ingest([second], now=T0, matchers={})
        stories = store.story_rows()
    finally:
        store.close()
    assert len(stories) == (1 if joined else 2)


@pytest.mark.timeout(600)
def test_stories_explain_shows_a_paraphrases_scores_and_rebuild_keeps_it(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\ningest: {workers: 0}\ndedup: {semantic: true}\n"
        "sources:\n  - {name: seeds, path: seeds}\n",
        encoding="utf-8",
    )
    for name, (title, body) in (("a.txt", ORIGINAL), ("b.txt", PARAPHRASE)):
        (seeds / name).write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    assert run_cli(config, "update").returncode == 0
    listed = json.loads(run_cli(config, "stories", "--json").stdout)
    assert len(listed) == 1
    story = listed[0]["id"]
    explained = run_cli(config, "stories", "--explain", story)
    assert "paraphrase: similarity" in explained.stdout, explained.stderr
    data = json.loads(run_cli(config, "stories", "--explain", story, "--json").stdout)
    assert any(e["rule"] == "semantic" and e["similarity"] for e in data["entries"])
    assert run_cli(config, "stories", "--rebuild").returncode == 0
    again = json.loads(run_cli(config, "stories", "--json").stdout)
    assert [s["id"] for s in again] == [story]


_DAEMON_PROBE = """
import asyncio, json, sys
from pathlib import Path
from aggregator.config import load_config
from aggregator.daemon import Daemon, DaemonSettings

config = load_config(Path(sys.argv[1]))
daemon = Daemon(config, DaemonSettings(watch=False))
feed = config.data_dir / "public" / "topics" / "port.atom"

async def main():
    running = asyncio.create_task(daemon.run())
    async with asyncio.timeout(200):
        while not (feed.exists() and feed.read_bytes().count(b"</entry>") == 1):
            await asyncio.sleep(0.05)
    model = ("tokenizers", "safetensors", "aggregator.stories.semantic")
    loaded = sorted(m for m in model if m in sys.modules)
    daemon.stop()
    await running
    print(json.dumps(loaded))

asyncio.run(main())
"""


@pytest.mark.timeout(600)
def test_the_daemon_joins_a_paraphrase_without_loading_the_model_itself(tmp_path: Path) -> None:
    """The parse workers embed beside the sketch: the daemon's process holds no model."""
    from .daemonkit import free_port

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, (title, body) in (("a.txt", ORIGINAL), ("b.txt", PARAPHRASE)):
        (seeds / name).write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\nserver: {{port: {free_port()}}}\ndedup: {{semantic: true}}\n"
        "sources:\n  - {name: seeds, path: seeds}\n"
        "topics:\n  - {name: port, query: Rotterdam}\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-c", _DAEMON_PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # one story in the feed: the paraphrase joined; the model stayed in the workers
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
