"""Config loading: valid files freeze into Config; every bad file fails with its key path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import config_json_schema, load_config, parse_duration, parse_size
from aggregator.errors import ConfigError
from aggregator.model import FullContent, SourceKind

from .conftest import DATA, REPO

BAD = sorted((DATA / "config" / "bad").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_names_file_and_key(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# error: ")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_query_error_has_column(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("topics:\n  - name: a\n    query: 'foo AND (bar OR'\n")
    with pytest.raises(ConfigError, match=r"topics\[0\]\.query: .*column \d+"):
        load_config(cfg)


def test_default_config_loads() -> None:
    config = load_config(REPO / "config" / "aggregator.yaml")
    assert config.server.host == "127.0.0.1"
    assert config.topics and config.sources
    assert config.data_dir == (REPO / "var").resolve()
    seeds = config.source("seeds")
    assert seeds is not None and seeds.kind is SourceKind.FILES
    assert seeds.location == str((REPO / "seeds").resolve())


def test_paths_relative_to_config_and_env_interpolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_HOST", "news.example.org")
    sub = tmp_path / "etc"
    sub.mkdir()
    cfg = sub / "a.yaml"
    cfg.write_text(
        "data_dir: ../data\n"
        "defaults: {interval: 1h30m, max_bytes: 2MiB}\n"
        "sources:\n"
        "  - {name: local, path: seeds}\n"
        "  - {name: wire, url: 'https://${FEED_HOST}/rss', interval: 90s, tags: [world]}\n"
        "  - {name: fallback, url: 'https://${UNSET_FOR_TEST:-example.net}/feed'}\n"
    )
    config = load_config(cfg)
    assert config.data_dir == tmp_path / "data"
    local, wire, fallback = config.sources
    assert local.location == str(sub / "seeds")
    assert local.interval == timedelta(hours=1, minutes=30)
    assert local.max_bytes == 2 * 2**20
    assert wire.location == "https://news.example.org/rss"
    assert wire.interval == timedelta(seconds=90)
    assert wire.tags == ("world",)
    assert fallback.location == "https://example.net/feed"


def test_include_adds_sources_relative_to_included_file(tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "sources.yaml").write_text("sources:\n  - {name: extra, path: local}\n")
    cfg = tmp_path / "main.yaml"
    cfg.write_text("include: [more/sources.yaml]\nsources:\n  - {name: own, path: seeds}\n")
    config = load_config(cfg)
    assert [s.name for s in config.sources] == ["own", "extra"]
    assert config.sources[1].location == str(tmp_path / "more" / "local")


def test_env_var_selects_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text("topics: [{name: t, query: x}]\n")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(cfg))
    assert load_config().topics[0].name == "t"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config("nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        (45, 45),
        ("500ms", 0.5),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "15", "fast", "10 parsecs", "-5m", 0, True, "1h banana"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10MiB", 10 * 2**20),
        ("500KB", 500_000),
        ("1GiB", 2**30),
        (1234, 1234),
        ("2 kib", 2048),
        ("7b", 7),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "10XB", 0, -1, False])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_json_schema_is_json_and_forbids_extra_keys() -> None:
    schema = config_json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert {"sources", "topics", "server", "defaults"} <= set(schema["properties"])


def test_topics_structured_reuse_and_scope(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sources:\n"
        "  - {name: seeds, path: seeds, tags: [World]}\n"
        "  - {name: wire, url: 'https://wire.example/rss', tags: [world, sport]}\n"
        "  - {name: desk, url: 'https://desk.example/rss'}\n"
        "topics:\n"
        "  - name: caucasus\n"
        "    query:\n"
        "      any: [Nagorno-Karabakh, Azerbaijan]\n"
        "      none: ['tag:sport']\n"
        "    sources: ['tag:world', desk]\n"
        "    max_age: 14d\n"
        "    lang: [en, FA]\n"
        "  - {name: recent, query: 'topic:caucasus AND age:<7d'}\n"
    )
    config = load_config(cfg)
    caucasus, recent = config.topics
    # A structured query is kept as its canonical string: it compiles to the same matcher.
    assert caucasus.query == '("nagorno karabakh" OR azerbaijan) AND NOT tag:sport'
    assert caucasus.sources == ("desk", "seeds", "wire")
    assert caucasus.max_age == timedelta(days=14)
    assert caucasus.lang == ("en", "fa")
    assert recent.query == "topic:caucasus AND age:<7d"
    assert (recent.sources, recent.max_age, recent.lang) == ((), None, ())


def test_full_content_true_or_selector(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sources:\n"
        "  - {name: plain, url: 'https://a.example.org/rss'}\n"
        "  - {name: auto, url: 'https://b.example.org/rss', full_content: true}\n"
        "  - {name: disabled, url: 'https://c.example.org/rss', full_content: false}\n"
        "  - name: picked\n"
        "    url: 'https://d.example.org/rss'\n"
        "    full_content: {selector: 'article .story-body, #main > p', max_pages: 10}\n"
    )
    config = load_config(cfg)
    by_name = {s.name: s.full_content for s in config.sources}
    assert by_name["plain"] is None and by_name["disabled"] is None
    assert by_name["auto"] == FullContent(selector=None)
    assert by_name["picked"] == FullContent(selector="article .story-body, #main > p", max_pages=10)
