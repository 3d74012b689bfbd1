"""Story ids never change, near duplicates join, and merged entries are published as rel=via."""

from __future__ import annotations

import random
from datetime import timedelta

import feedparser
import pytest

from aggregator.model import TopicSpec
from aggregator.publish import Site, TopicFeed, render_site
from aggregator.store import open_store
from aggregator.stories.dedup import mint_story_id
from aggregator.stories.neardup import NearDupSettings

from .factories import T0, make_item

WIRE = (
    "Dockworkers at the Port of Rotterdam walked off the job at 6 a.m. on Saturday at the start "
    "of a 48-hour strike over pay, halting container handling at Europe's largest port. The FNV "
    "union said about 2,800 workers at the Maasvlakte terminals joined the stoppage after talks "
    "with employers broke down on Thursday. The port authority said 14 container ships were "
    "waiting at anchor off the Hook of Holland by mid-morning."
)
# Another outlet's copy: new headline, light edits, a related list glued on.
COPY = (
    WIRE.replace("walked off the job", "stopped work").replace("by mid-morning", "on Saturday")
    + "</p><h3>Related</h3><ul><li>Rotterdam port strike called off after pay deal</li></ul><p>"
)
# A follow-up sharing the place, names and background: a new story.
FOLLOW_UP = (
    "The FNV union called off the strike at the Port of Rotterdam on Monday after reaching a pay "
    "deal with employers, ending a stoppage that had halted container handling at the Maasvlakte "
    "terminals for two days. Under the agreement, about 2,800 dockworkers will get a 6% pay rise "
    "over two years. The port authority expected the backlog off the Hook of Holland to clear."
)
ALWAYS = {"all": lambda item: True}


def _wire(link: str = "https://cpa.example/rotterdam-strike"):  # type: ignore[no-untyped-def]
    return make_item(
        "cpa-1",
        source="wire",
        title="Rotterdam dockworkers begin 48-hour strike",
        body=WIRE,
        link=link,
    )


def _copy():  # type: ignore[no-untyped-def]
    return make_item(
        "ml-7",
        source="ledger",
        title="Strike halts Europe's biggest port",
        body=COPY,
        link="https://morningledger.example/strike",
        published=T0 + timedelta(hours=2),
    )


def test_near_duplicate_joins_and_ids_survive_restart_reingest_and_removal(
    store_url: str,
) -> None:
    if store_url == "sqlite://":
        pytest.skip("an in-memory database does not outlive its engine")
    own_id = mint_story_id("wire", "cpa-1")
    store = open_store(store_url)
    store.sync_topics({"all": "x"}, ALWAYS, now=T0)
    store.ingest([_wire()], now=T0, matchers=ALWAYS)
    report = store.ingest([_copy()], now=T0 + timedelta(hours=2), matchers=ALWAYS)
    assert report.merged == 1
    follow = make_item("cpa-2", source="wire", title="Rotterdam strike ends", body=FOLLOW_UP)
    store.ingest([follow], now=T0 + timedelta(days=2), matchers=ALWAYS)
    stories = {s["id"]: s for s in store.story_rows()}
    assert set(stories) == {own_id, mint_story_id("wire", "cpa-2")}
    assert [e["source"] for e in stories[own_id]["entries"]] == ["wire", "ledger"]
    joins = store.story_joins(own_id)
    assert [j["rule"] for j in joins] == ["new", "near"]
    assert joins[1]["containment"] >= 0.45
    updated = stories[own_id]["updated"]
    store.close()

    # Restart: the index is in the database, so a third copy still finds the story.
    store = open_store(store_url)
    third = make_item(
        "seed:abc",
        source="seeds",
        title="Rotterdam Port:",
        body=WIRE,
        published=T0 + timedelta(days=9),
    )
    store.ingest([third], now=T0 + timedelta(days=1), matchers=ALWAYS)
    # Full re-ingest of everything: nothing moves.
    report = store.ingest(
        [_wire(), _copy(), follow, third], now=T0 + timedelta(days=3), matchers=ALWAYS
    )
    assert report.unchanged == 4
    after = {s["id"]: s for s in store.story_rows()}
    assert set(after) == set(stories)
    assert after[own_id]["updated"] == updated
    assert len(after[own_id]["entries"]) == 3

    # The feed moved (301): same guids, links on a new host: same story.
    moved = _wire(link="https://newcpa.example/rotterdam-strike")
    store.ingest([moved], now=T0 + timedelta(days=4), matchers=ALWAYS)
    assert {s["id"] for s in store.story_rows()} == set(stories)

    # The first source removes its entry: the story keeps its id.
    store.remove_entries("wire", ["cpa-1"], now=T0 + timedelta(days=5))
    left = {s["id"]: s for s in store.story_rows()}
    assert own_id in left
    assert {e["source"] for e in left[own_id]["entries"]} == {"ledger", "seeds"}
    # A duplicate of the removed entry comes back: it rejoins the same story.
    store.ingest([_wire()], now=T0 + timedelta(days=6), matchers=ALWAYS)
    assert {s["id"] for s in store.story_rows()} == set(stories)
    store.close()


def test_merged_entries_are_rel_via_links_read_by_feedparser(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    store.sync_topics({"all": "x"}, ALWAYS, now=T0)
    store.ingest([_wire(), _copy()], now=T0 + timedelta(hours=3), matchers=ALWAYS)
    stories = store.topic_stories("all")
    store.close()
    assert len(stories) == 1
    topic = TopicSpec(name="all", title="All", query="x")
    site = Site(base_url="http://127.0.0.1:8080/", title="t")
    docs = render_site(site, [TopicFeed(topic, tuple(stories))])
    atom = next(d for path, d in docs.items() if path.endswith("all.atom"))
    parsed = feedparser.parse(atom.body)
    entry = parsed.entries[0]
    via = sorted(link["href"] for link in entry.links if link.get("rel") == "via")
    assert via == ["https://cpa.example/rotterdam-strike", "https://morningledger.example/strike"]
    assert entry.id == mint_story_id("wire", "cpa-1")
    content = entry.content[0].value
    assert "Also reported by:" in content
    json_doc = next(d for path, d in docs.items() if path.endswith("all.json"))
    assert b"https://morningledger.example/strike" in json_doc.body


def test_rebuild_after_a_threshold_change_keeps_ids_where_clusters_persist(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    store.sync_topics({"all": "x"}, ALWAYS, now=T0)
    follow = make_item("cpa-2", source="wire", title="Rotterdam strike ends", body=FOLLOW_UP)
    store.ingest([_wire(), _copy(), follow], now=T0 + timedelta(hours=3), matchers=ALWAYS)
    own_id = mint_story_id("wire", "cpa-1")
    assert len(store.story_ids()) == 2
    store.close()

    # Stricter: the edited copy no longer joins; the wire story keeps its id.
    strict = open_store(url, near=NearDupSettings(containment=0.99, strict_containment=0.99))
    report, _dirty = strict.rebuild_stories(now=T0 + timedelta(days=1), matchers=ALWAYS)
    assert (report.stories_before, report.stories_after, report.moved) == (2, 3, 1)
    ids = strict.story_ids()
    assert own_id in ids and mint_story_id("ledger", "ml-7") in ids
    assert len(strict.topic_stories("all")) == 3
    strict.close()

    # Back to the defaults: the copy rejoins the story it left, under the old id.
    store = open_store(url)
    report, _dirty = store.rebuild_stories(now=T0 + timedelta(days=2), matchers=ALWAYS)
    assert (report.stories_after, report.moved) == (2, 1)
    assert store.story_ids() == {own_id, mint_story_id("wire", "cpa-2")}
    story = next(s for s in store.story_rows() if s["id"] == own_id)
    assert {e["source"] for e in story["entries"]} == {"wire", "ledger"}
    assert len(store.topic_stories("all")) == 2
    store.close()


@pytest.mark.parametrize(("updates", "first"), [("replace", 2), ("resurface", 1)])
def test_topic_updates_replace_or_resurface(updates: str, first: int) -> None:
    from .publish_helpers import T0 as P0
    from .publish_helpers import make_story

    # Story 1 was published first but updated last.
    older = make_story(1, updated=P0 + timedelta(days=3))
    newer = make_story(2)
    topic = TopicSpec(name="all", title="All", query="x", updates=updates)
    site = Site(base_url="http://127.0.0.1:8080/", title="t")
    docs = render_site(site, [TopicFeed(topic, (older, newer))])
    atom = next(d for path, d in docs.items() if path.endswith("all.atom"))
    entries = feedparser.parse(atom.body).entries
    assert entries[0].id.endswith(f"story/{first}")


def test_stories_command_lists_explains_and_rebuilds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "001_aaaaaaaaaaaaaaaa.txt").write_text(
        "Rotterdam Port:\nCranes at the Maasvlakte terminal\n\nRotterdam (IP): " + WIRE + "\n",
        encoding="utf-8",
    )
    (seeds / "002_bbbbbbbbbbbbbbbb.txt").write_text(
        "Port Strike:\nShips at anchor\n\nRotterdam (IP): "
        + WIRE.replace("walked off the job", "stopped work")
        + "\n",
        encoding="utf-8",
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\nsources:\n  - {{name: seeds, path: seeds}}\n"
        "topics:\n  - {name: all, title: All, query: 'strike'}\n",
        encoding="utf-8",
    )

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cli("update")
    stories = json.loads(cli("stories", "--json", "--topic", "all"))
    assert len(stories) == 1
    paths = sorted(e["path"] for e in stories[0]["entries"])
    assert paths == ["001_aaaaaaaaaaaaaaaa.txt", "002_bbbbbbbbbbbbbbbb.txt"]
    # A seed file has no guid and no link: its identity comes from its name.
    assert {e["identity"] for e in stories[0]["entries"]} == {
        "seed:aaaaaaaaaaaaaaaa",
        "seed:bbbbbbbbbbbbbbbb",
    }
    assert all(e["guid"] is None and e["link_as_published"] is None for e in stories[0]["entries"])
    explained = json.loads(cli("stories", "--explain", stories[0]["id"], "--json"))
    assert sorted(e["rule"] for e in explained["entries"]) == ["near", "new"]
    assert "stories: 1 before, 1 after; 0 entries moved, 1 ids kept" in cli("stories", "--rebuild")
    assert json.loads(cli("stories", "--json"))[0]["id"] == stories[0]["id"]


def _prose(seed: int, words: int) -> str:
    """Made-up words, no digits: texts that share nothing unless built from the same parts."""
    rng = random.Random(seed)
    letters = "abcdefghiklmnoprstuvw"
    return " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(words)
    )


# The full story; a copy cut after its lead; a copy with the lead rewritten.
LEAD, LEAD_REWRITTEN, BODY = _prose(1, 70), _prose(2, 50), _prose(3, 300)
FULL = make_item("full", source="wire", title="Full", body=f"{LEAD} {BODY}")
TRUNCATED = make_item("cut", source="ledger", title="Cut", body=LEAD)
REWRITTEN = make_item("rewrite", source="courier", title="Rewrite", body=f"{LEAD_REWRITTEN} {BODY}")


def test_an_entry_bridging_two_stories_merges_them_into_the_older(store_url: str) -> None:
    store = open_store(store_url)
    store.sync_topics({"all": "x"}, ALWAYS, now=T0)
    # The truncated copy and the rewritten one share no text: two stories.
    store.ingest([TRUNCATED], now=T0, matchers=ALWAYS)
    store.ingest([REWRITTEN], now=T0 + timedelta(hours=1), matchers=ALWAYS)
    older, younger = mint_story_id("ledger", "cut"), mint_story_id("courier", "rewrite")
    assert store.story_ids() == {older, younger}

    # The full story is a near-duplicate of both: one story, the older id.
    report = store.ingest([FULL], now=T0 + timedelta(hours=2), matchers=ALWAYS)
    assert report.merged == 1
    assert report.dirty_topics == {"all"}
    assert store.story_ids() == {older}
    (story,) = store.topic_stories("all")
    assert story.id == older
    assert {(v.source) for v in story.via} == {"wire", "ledger", "courier"}
    # The fullest telling is canonical; the younger story's join record moved with it.
    assert story.item.identity == "full"
    assert {j["identity"] for j in store.story_joins(older)} == {"cut", "rewrite", "full"}
    assert store.story_joins(younger) == []

    # A rebuild replays the same rules: the merged story persists with its id.
    rebuilt, _dirty = store.rebuild_stories(now=T0 + timedelta(hours=3), matchers=ALWAYS)
    assert (rebuilt.stories_after, rebuilt.moved) == (1, 0)
    assert store.story_ids() == {older}
    # The younger story's entry comes back after removal: it rejoins the merged story.
    store.remove_entries("courier", ["rewrite"], now=T0 + timedelta(hours=4))
    store.ingest([REWRITTEN], now=T0 + timedelta(hours=5), matchers=ALWAYS)
    assert store.story_ids() == {older}
    store.close()


@pytest.mark.parametrize(
    "order",
    [
        (TRUNCATED, REWRITTEN, FULL),
        (REWRITTEN, TRUNCATED, FULL),
        (FULL, TRUNCATED, REWRITTEN),
        (TRUNCATED, FULL, REWRITTEN),
    ],
    ids=lambda order: "-".join(i.identity for i in order),
)
@pytest.mark.parametrize("one_batch", [False, True], ids=["one-per-poll", "one-batch"])
def test_bridged_stories_are_one_whatever_the_order(order, one_batch: bool) -> None:  # type: ignore[no-untyped-def]
    store = open_store("sqlite://")
    store.sync_topics({"all": "x"}, ALWAYS, now=T0)
    if one_batch:
        store.ingest(list(order), now=T0, matchers=ALWAYS)
    else:
        for n, item in enumerate(order):
            store.ingest([item], now=T0 + timedelta(minutes=n), matchers=ALWAYS)
    (story,) = store.story_rows()
    assert len(story["entries"]) == 3
    minted = [mint_story_id(item.source, item.identity) for item in order]
    if one_batch:
        # Stories first seen in one batch are equally old: the smaller id wins.
        assert story["id"] in minted[:2]
    else:
        # The story first seen keeps its id.
        assert story["id"] == minted[0]
    store.close()
