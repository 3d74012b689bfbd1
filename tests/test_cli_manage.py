"""``aggregator add``, ``remove``, ``disable``, ``enable`` end to end, through click's runner.

The config has comments, flow and block items and an ``include:``: every edit
must give back each file byte for byte apart from the change, and a change
that does not validate must leave every file as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from aggregator.cli import EXIT_CONFIG, EXIT_SOURCE_FAILED, main
from aggregator.config import load_config


def rss(title: str, *items: tuple[str, str]) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{t}</title><link>http://example.org/{guid}</link>"
        f"<description>{t}, the whole story.</description>"
        f"<pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item>"
        for guid, t in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://example.org/</link><description>d</description>{body}</channel></rss>"
    ).encode()


PAGE = b"""<!doctype html><html><head><title>Site</title>
<link rel="alternate" type="application/rss+xml" title="Main feed" href="/main.rss">
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments.rss">
</head><body>hello</body></html>
"""

CONFIG = """\
# My aggregator config: keep this comment.
data_dir: var   # relative to this file
allow_networks: ['127.0.0.0/8']
sources:
  # the seed folder
  - {name: seeds, path: seeds}
  - name: tech-blog   # the blog
    url: %(base)s/tech.rss
    tags: [News, Tech]
    # about tech-blog

include:
  - more.yaml   # more sources
topics:
  - name: all
    query: 'story'
# trailing comment
"""

MORE = """\
# Sources kept apart.
sources:
  - name: wire
    url: %(base)s/wire.rss   # the wire
    interval: 15m
"""


@pytest.fixture
def site(httpserver: HTTPServer, tmp_path: Path) -> tuple[Path, str]:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/page").respond_with_data(PAGE, content_type="text/html")
    httpserver.expect_request("/main.rss").respond_with_data(
        rss("Main News Feed", ("m1", "Main story one")), content_type="application/rss+xml"
    )
    httpserver.expect_request("/comments.rss").respond_with_data(
        rss("Comments Feed", ("c1", "A comment story")), content_type="application/rss+xml"
    )
    httpserver.expect_request("/tech.rss").respond_with_data(
        rss("Tech", ("t1", "Tech story one"), ("t2", "Tech story two")),
        content_type="application/rss+xml",
    )
    httpserver.expect_request("/wire.rss").respond_with_data(
        rss("Wire", ("w1", "Wire story one")), content_type="application/rss+xml"
    )
    (tmp_path / "seeds").mkdir()
    config = tmp_path / "aggregator.yaml"
    config.write_text(CONFIG % {"base": base})
    (tmp_path / "more.yaml").write_text(MORE % {"base": base})
    return config, base


def cli(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], input=input)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the data folder, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "var" not in p.relative_to(folder).parts
    }


def test_add_a_page_picks_a_feed_and_keeps_every_other_byte(site: tuple[Path, str]) -> None:
    config, base = site
    before = config.read_text()
    more = (config.parent / "more.yaml").read_bytes()
    result = cli(config, "add", f"{base}/page", "--pick", "1", "--tag", "World", "--tag", "News")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"added main-news-feed ({base}/main.rss) to {config}")
    block = f'  - name: "main-news-feed"\n    url: "{base}/main.rss"\n    tags: ["World", "News"]\n'
    # Inserted after the last item (and the comment that belongs to it), nothing else moved.
    anchor = "    # about tech-blog\n"
    assert config.read_text() == before.replace(anchor, anchor + block)
    assert (config.parent / "more.yaml").read_bytes() == more
    spec = load_config(config).source("main-news-feed")
    assert spec is not None
    assert spec.location == f"{base}/main.rss"
    assert spec.tags == ("World", "News")
    # The same feed again is refused, and nothing changes.
    snapshot = files(config.parent)
    again = cli(config, "add", f"{base}/main.rss")
    assert again.exit_code == EXIT_CONFIG
    assert "configured already, as 'main-news-feed'" in again.stderr
    assert files(config.parent) == snapshot


def test_add_asks_which_feed_when_a_page_offers_several(site: tuple[Path, str]) -> None:
    config, base = site
    snapshot = files(config.parent)
    # No answer (a script): the feeds are listed and nothing is written.
    silent = cli(config, "add", f"{base}/page", input="")
    assert silent.exit_code == EXIT_CONFIG
    assert f"1. {base}/main.rss" in silent.stderr
    assert f"2. {base}/comments.rss" in silent.stderr
    assert "choose one with --pick N, or --yes" in silent.stderr
    assert files(config.parent) == snapshot
    answered = cli(config, "add", f"{base}/page", "--name", "talk", input="2\n")
    assert answered.exit_code == 0, answered.output
    assert load_config(config).source("talk").location == f"{base}/comments.rss"  # type: ignore[union-attr]
    first = cli(config, "add", f"{base}/page", "--yes")
    assert first.exit_code == 0, first.output
    assert load_config(config).source("main-news-feed") is not None


def test_add_into_a_new_file_adds_it_to_the_includes(site: tuple[Path, str]) -> None:
    config, base = site
    before = config.read_text()
    target = config.parent / "sources.d" / "mine.yaml"
    result = cli(config, "add", f"{base}/wire.rss", "--into", str(target))
    assert result.exit_code == EXIT_CONFIG  # wire.rss is configured already (in more.yaml)
    assert not target.exists()
    result = cli(config, "add", f"{base}/main.rss", "--into", str(target), "--full-content")
    assert result.exit_code == 0, result.output
    assert config.read_text() == before.replace(
        "  - more.yaml   # more sources\n",
        '  - more.yaml   # more sources\n  - "sources.d/mine.yaml"\n',
    )
    assert target.read_text() == (
        f'sources:\n  - name: "main-news-feed"\n    url: "{base}/main.rss"\n'
        "    full_content: true\n"
    )
    spec = load_config(config).source("main-news-feed")
    assert spec is not None and spec.full_content is not None


def test_add_into_an_included_file_leaves_the_config_alone(site: tuple[Path, str]) -> None:
    config, base = site
    before = config.read_bytes()
    more = config.parent / "more.yaml"
    old = more.read_text()
    result = cli(config, "add", f"{base}/main.rss", "--into", str(more), "--name", "main")
    assert result.exit_code == 0, result.output
    assert config.read_bytes() == before
    assert more.read_text() == old + f'  - name: "main"\n    url: "{base}/main.rss"\n'


def test_a_change_that_does_not_validate_leaves_every_file_as_it_was(
    site: tuple[Path, str],
) -> None:
    config, base = site
    snapshot = files(config.parent)
    bad_name = cli(config, "add", f"{base}/main.rss", "--name", "Not A Name")
    assert bad_name.exit_code == EXIT_CONFIG
    assert "is not a valid name" in bad_name.stderr
    assert "no file was changed" in bad_name.stderr
    assert bad_name.stderr.count("\n") == 1
    # Into a new file too: neither the file nor the include appears.
    target = config.parent / "new.yaml"
    into = cli(config, "add", f"{base}/main.rss", "--name", "Bad", "--into", str(target))
    assert into.exit_code == EXIT_CONFIG
    assert files(config.parent) == snapshot
    # A source that a topic names cannot be removed.
    text = config.read_text().replace("query: 'story'", "query: 'story'\n    sources: [wire]")
    config.write_text(text)
    snapshot = files(config.parent)
    refused = cli(config, "remove", "wire")
    assert refused.exit_code == EXIT_CONFIG
    assert "unknown source 'wire'" in refused.stderr
    assert "topics[0].sources[0]" in refused.stderr
    assert files(config.parent) == snapshot


def test_unknown_sources_and_urls_that_are_not_feeds(site: tuple[Path, str]) -> None:
    config, base = site
    snapshot = files(config.parent)
    for command in ("remove", "disable", "enable"):
        result = cli(config, command, "nope")
        assert result.exit_code == EXIT_CONFIG
        assert "unknown source 'nope'" in result.stderr
    missing = cli(config, "add", f"{base}/missing")
    assert missing.exit_code == EXIT_SOURCE_FAILED
    assert files(config.parent) == snapshot


def stories(config: Path) -> dict[str, set[str]]:
    """Source -> the titles of its stored entries."""
    result = cli(config, "stories", "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, set[str]] = {}
    for story in json.loads(result.stdout):
        for entry in story["entries"]:
            found.setdefault(entry["source"], set()).add(story["title"])
    return found


def test_remove_takes_the_stories_unless_kept(site: tuple[Path, str]) -> None:
    config, _base = site
    assert cli(config, "update").exit_code == 0
    assert stories(config)["tech-blog"] == {"Tech story one", "Tech story two"}
    before = config.read_text()
    more = config.parent / "more.yaml"

    kept = cli(config, "remove", "wire", "--keep-stories")
    assert kept.exit_code == 0, kept.output
    assert "removed wire from" in kept.stdout and "its stories are kept" in kept.stdout
    assert more.read_text() == "# Sources kept apart.\nsources:\n"
    assert config.read_text() == before
    assert stories(config)["wire"] == {"Wire story one"}

    gone = cli(config, "remove", "tech-blog")
    assert gone.exit_code == 0, gone.output
    lines = before.splitlines(keepends=True)
    start = lines.index("  - name: tech-blog   # the blog\n")
    # Its four lines (the comment under it is its own) go; the blank line stays.
    assert config.read_text() == "".join(lines[:start] + lines[start + 4 :])
    assert "tech-blog" not in stories(config)
    assert load_config(config).source("tech-blog") is None


def test_disable_then_enable_gives_back_the_same_bytes(
    site: tuple[Path, str], httpserver: HTTPServer
) -> None:
    config, _base = site
    before = config.read_bytes()
    result = cli(config, "disable", "tech-blog")
    assert result.exit_code == 0, result.output
    assert config.read_text() == before.decode().replace(
        "    tags: [News, Tech]\n", "    tags: [News, Tech]\n    enabled: false\n"
    )
    assert cli(config, "disable", "tech-blog").stdout == "tech-blog is disabled already\n"
    polled = sum(1 for req, _ in httpserver.log if req.path == "/tech.rss")
    update = cli(config, "update", "--json")
    assert update.exit_code == 0, update.output
    assert "skipped: tech-blog: disabled in the config" in update.stderr
    assert "tech-blog" not in {r["source"] for r in json.loads(update.stdout)}
    assert sum(1 for req, _ in httpserver.log if req.path == "/tech.rss") == polled
    shown = {r["name"]: r for r in json.loads(cli(config, "sources", "--json").stdout)}
    assert shown["tech-blog"]["enabled"] is False
    assert shown["tech-blog"]["disabled"] == "disabled in the config (enabled: false)"
    status = {s["name"]: s for s in json.loads(cli(config, "status", "--json").stdout)["sources"]}
    assert status["tech-blog"]["state"] == "disabled"

    # A source in an included flow mapping, then back.
    more = config.parent / "more.yaml"
    more_before = more.read_bytes()
    assert cli(config, "disable", "wire").exit_code == 0
    assert b"    enabled: false\n" in more.read_bytes()
    assert cli(config, "enable", "wire").exit_code == 0
    assert more.read_bytes() == more_before

    enabled = cli(config, "enable", "tech-blog")
    assert enabled.exit_code == 0, enabled.output
    assert config.read_bytes() == before
    assert cli(config, "enable", "tech-blog").stdout == "tech-blog is enabled already\n"
    assert cli(config, "update", "--source", "tech-blog").exit_code == 0
    assert sum(1 for req, _ in httpserver.log if req.path == "/tech.rss") == polled + 1


def test_disable_and_enable_a_flow_mapping_item(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    config = tmp_path / "aggregator.yaml"
    text = "sources:\n  - {name: seeds, path: seeds}   # local\n"
    config.write_text(text)
    assert cli(config, "disable", "seeds").exit_code == 0
    assert config.read_text() == text.replace("path: seeds}", "path: seeds, enabled: false}")
    assert load_config(config).sources[0].enabled is False
    assert cli(config, "enable", "seeds").exit_code == 0
    assert config.read_text() == text
