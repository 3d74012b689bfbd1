"""A source's ``rules: {block, keep}``: checked at load, applied at ingest, shown, re-applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from aggregator.cli import EXIT_CONFIG, main
from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.model import Item, SourceRules
from aggregator.topics.rules import judge, split_by_rules

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def item(title: str, content: str = "<p>Body.</p>", tags: tuple[str, ...] = ()) -> Item:
    return Item(
        source="wire",
        identity=title,
        title=title,
        link=f"https://example.org/{abs(hash(title))}",
        content_html=content,
        summary="",
        published=NOW,
        updated=NOW,
        tags=tags,
    )


# -- the rules (pure) -----------------------------------------------------------


def test_block_drops_what_it_matches_and_says_which_clause() -> None:
    rules = SourceRules(block='title:/^(video|live):/i OR "sponsored content"')
    drop = judge(item("Video: cats on a train"), rules, now=NOW)
    assert drop is not None
    assert drop.rule == "block"
    assert "title" in drop.reason and "Video:" in drop.reason
    assert judge(item("Talks resume", "<p>This is sponsored content.</p>"), rules, now=NOW)
    assert judge(item("Talks resume in Vienna"), rules, now=NOW) is None


def test_keep_drops_what_it_does_not_match() -> None:
    rules = SourceRules(keep="tag:world OR Karabakh*")
    assert judge(item("Karabakhi refugees return"), rules, now=NOW) is None
    assert judge(item("Anything", tags=("World",)), rules, now=NOW) is None
    drop = judge(item("Local football results"), rules, now=NOW)
    assert drop is not None and drop.rule == "keep"
    assert drop.reason.startswith("keep did not match")


def test_block_is_asked_first_and_order_is_kept() -> None:
    rules = SourceRules(block="title:video", keep="iran")
    kept, dropped = split_by_rules(
        [item("Iran one"), item("Iran video"), item("Other"), item("Iran two")], rules, now=NOW
    )
    assert [i.title for i in kept] == ["Iran one", "Iran two"]
    assert [(d.rule, d.title) for d in dropped] == [("block", "Iran video"), ("keep", "Other")]
    assert split_by_rules([item("x")], None, now=NOW) == ([item("x")], [])


# -- the config ---------------------------------------------------------------------


def config_text(rules: str, *, url: str = "https://wire.example/rss") -> str:
    return (
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\n"
        f"sources:\n  - name: wire\n    url: {url}\n{rules}"
        "topics:\n  - {name: all, query: 'story OR talks OR election OR video OR sports'}\n"
    )


@pytest.mark.parametrize(
    ("rules", "key", "message"),
    [
        ("    rules: {block: 'title:(a'}\n", "sources[0].rules.block", "unclosed '(' at column 7"),
        ("    rules: {keep: 'topic:all'}\n", "sources[0].rules.keep", "cannot reuse a topic"),
        ("    rules: {}\n", "sources[0].rules", "give 'block', 'keep' or both"),
        ("    rules: {drop: x}\n", "sources[0].rules", "unknown key 'drop'"),
        ("    rules: {keep: {any: [a, {bad: 1}]}}\n", "sources[0].rules.keep.any[1]", ""),
    ],
)
def test_a_bad_rule_fails_at_load_with_its_key_path(
    tmp_path: Path, rules: str, key: str, message: str
) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(config_text(rules))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}: {key}" in str(caught.value)
    assert message in str(caught.value)


def test_a_structured_rule_loads_as_its_canonical_string(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(config_text("    rules: {keep: {any: [Iran, Armenia]}, block: video}\n"))
    rules = load_config(path).sources[0].rules
    assert rules == SourceRules(block="video", keep="iran OR armenia")


# -- end to end: ingest, sources, explain, reload -------------------------------------

FEED_ITEMS = [
    ("v", "Video: the talks in pictures"),
    ("i", "Iran talks resume"),
    ("a", "Armenia election story"),
    ("s", "Sports round-up"),
]


def rss() -> bytes:
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>http://example.org/{g}</link>"
        f"<description>{t}: the whole story.</description>"
        "<pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item>"
        for g, t in FEED_ITEMS
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>http://example.org/</link><description>d</description>{body}</channel></rss>"
    ).encode()


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def titles(config: Path) -> set[str]:
    result = cli(config, "stories", "--json")
    assert result.exit_code == 0, result.output
    return {s["title"] for s in json.loads(result.stdout)}


def rules_of(config: Path) -> dict[str, object]:
    result = cli(config, "sources", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]["rules"]  # type: ignore[no-any-return]


def test_rules_drop_at_ingest_show_their_drops_and_are_reapplied_on_change(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/rss").respond_with_data(rss(), content_type="application/rss+xml")
    config = tmp_path / "aggregator.yaml"
    rules = "    rules:\n      block: 'title:/^video:/i'\n      keep: 'Iran OR Armenia'\n"
    config.write_text(config_text(rules, url=httpserver.url_for("/rss")))
    assert cli(config, "update").exit_code == 0
    assert titles(config) == {"Iran talks resume", "Armenia election story"}

    shown = rules_of(config)
    assert shown["block"] == "title:/^video:/i"
    assert shown["blocked"] == 1 and shown["unkept"] == 1
    examples = shown["examples"]
    assert isinstance(examples, list)
    assert [(e["rule"], e["title"]) for e in examples] == [
        ("keep", "Sports round-up"),
        ("block", "Video: the talks in pictures"),
    ]
    table = cli(config, "sources").stdout
    assert "rules: wire: block 'title:/^video:/i' dropped 1; keep 'Iran OR Armenia' dropped 1" in (
        table
    )
    explained = cli(config, "explain", "--source", "wire")
    assert explained.exit_code == 0, explained.output
    assert "'Video: the talks in pictures' (block: " in explained.stdout
    assert "'Sports round-up' (keep: keep did not match" in explained.stdout
    as_json = json.loads(cli(config, "explain", "--source", "wire", "--json").stdout)
    assert as_json["rules"]["blocked"] == 1
    # A second poll of the same feed drops the same entries again (counted again).
    assert cli(config, "update").exit_code == 0

    # A stricter rule: applied to the stored entries at the next load of the config.
    config.write_text(config.read_text().replace("'Iran OR Armenia'", "Iran"))
    assert titles(config) == {"Iran talks resume"}
    shown = rules_of(config)
    assert shown["unkept"] == 1 and shown["blocked"] == 0
    assert [e["title"] for e in shown["examples"]] == ["Armenia election story"]  # type: ignore[union-attr]

    # No rules at all: the next poll reads the feed again and lets everything in.
    config.write_text(config.read_text().replace(rules.replace("'Iran OR Armenia'", "Iran"), ""))
    assert rules_of(config) is None
    assert cli(config, "update").exit_code == 0
    assert titles(config) == {t for _, t in FEED_ITEMS}
    no_rules = cli(config, "explain", "--source", "wire")
    assert no_rules.stdout == "wire has no rules: every entry is kept\n"


def test_rules_apply_to_seed_files(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "one.md").write_text("# Election story in Yerevan\n\nThe vote was counted.\n")
    (seeds / "two.md").write_text("# Sponsored: buy now\n\nA great offer story.\n")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nsources:\n  - name: seeds\n    path: seeds\n"
        "    rules: {block: 'title:sponsored'}\ntopics:\n  - {name: all, query: story}\n"
    )
    assert cli(config, "update").exit_code == 0
    assert titles(config) == {"Election story in Yerevan"}
    assert rules_of(config)["blocked"] == 1


def test_explain_needs_a_topic_or_a_source(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n")
    result = cli(config, "explain")
    assert result.exit_code == EXIT_CONFIG
    assert "give a TOPIC, or --source NAME" in result.stderr
    unknown = cli(config, "explain", "--source", "nope")
    assert unknown.exit_code == EXIT_CONFIG
