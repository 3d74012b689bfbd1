"""``aggregator discover``, ``export-opml`` and ``import-opml`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from aggregator.cli import EXIT_CONFIG, EXIT_SOURCE_FAILED, main
from aggregator.cli.subscriptions import slugify
from aggregator.config import load_config
from aggregator.config.edit import add_include
from aggregator.sources.opml import parse_opml

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Guessed RSS</title>
<link>http://example.org/</link><description>d</description>
<item><title>One</title><link>http://example.org/1</link></item></channel></rss>
"""

PAGE = b"""<!doctype html><html><head><title>Site</title>
<link rel="alternate" type="application/rss+xml" title="Main feed" href="/main.rss">
<link rel="alternate" type="application/atom+xml" title="Comments" href="comments.atom">
<link rel="stylesheet" href="/style.css">
</head><body><a href="/other/feed.xml">Other feed</a></body></html>
"""

CONFIG = """\
# My aggregator config: keep this comment.
data_dir: var   # relative to this file
server: {base_url: 'http://127.0.0.1:8080/'}
site:
  title: Newsroom
%(allow)s
sources:
  # the seed folder
  - {name: seeds, path: seeds}
  - {name: known, url: 'https://known.example/feed.xml', title: Known, tags: [News]}
  - name: tech-blog
    url: https://tech.example/atom
    tags: [News, Tech]
%(include)s
# trailing comment
"""

OPML = """<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>subs</title></head><body>
<outline text="News">
  <outline text="Known again" type="rss" xmlUrl="https://known.example/feed.xml"/>
  <outline text="Zürich Daily" type="rss" xmlUrl="https://zh.example/rss"/>
  <outline text="Tech">
    <outline text="Tech Blog" type="rss" xmlUrl="https://blog-one.example/rss"/>
    <outline text="Tech Blog" type="rss" xmlUrl="https://blog-two.example/rss"/>
  </outline>
</outline>
<outline type="rss" xmlUrl="https://untitled.example/x.xml"/>
<outline text="Feed Digest" type="rss" xmlUrl="https://digest.example/x.xml"/>
</body></opml>
"""


def write_config(tmp_path: Path, *, allow: bool = True, include: str = "") -> Path:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        CONFIG % {"allow": "allow_networks: ['127.0.0.0/8']" if allow else "", "include": include}
    )
    return path


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


# -- discover ----------------------------------------------------------------------


def test_discover_lists_linked_feeds(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/blog/").respond_with_data(PAGE, content_type="text/html")
    result = cli(write_config(tmp_path), "discover", "--json", httpserver.url_for("/blog/"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "url": httpserver.url_for("/main.rss"),
            "title": "Main feed",
            "type": "application/rss+xml",
            "via": "link",
        },
        {
            "url": httpserver.url_for("/blog/comments.atom"),
            "title": "Comments",
            "type": "application/atom+xml",
            "via": "link",
        },
        {
            "url": httpserver.url_for("/other/feed.xml"),
            "title": "Other feed",
            "type": None,
            "via": "anchor",
        },
    ]
    table = cli(write_config(tmp_path), "discover", httpserver.url_for("/blog/"))
    assert table.exit_code == 0
    assert "Main feed" in table.stdout and "application/rss+xml" in table.stdout


def test_discover_probes_common_paths(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/").respond_with_data(
        "<html><body>no links</body></html>", content_type="text/html"
    )
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/feed").respond_with_data(
        "<html><body>a page</body></html>", content_type="text/html"
    )
    # every other common path answers 404 (pytest-httpserver's default for no handler)
    result = cli(write_config(tmp_path), "discover", "--json", httpserver.url_for("/"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "url": httpserver.url_for("/rss"),
            "title": "Guessed RSS",
            "type": "application/rss+xml",
            "via": "guess",
        }
    ]


def test_discover_on_a_feed_names_itself(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/x.rss").respond_with_data(RSS, content_type="text/xml")
    result = cli(write_config(tmp_path), "discover", "--json", httpserver.url_for("/x.rss"))
    assert result.exit_code == 0, result.output
    (feed,) = json.loads(result.stdout)
    assert feed == {
        "url": httpserver.url_for("/x.rss"),
        "title": "Guessed RSS",
        "type": "text/xml",
        "via": "self",
    }


def test_discover_nothing_found_exits_1(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/").respond_with_data("<html></html>", content_type="text/html")
    result = cli(write_config(tmp_path), "discover", httpserver.url_for("/"))
    assert result.exit_code == EXIT_SOURCE_FAILED
    assert "no feeds found" in result.stderr


def test_discover_refuses_loopback_without_allow(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/").respond_with_data(PAGE, content_type="text/html")
    result = cli(write_config(tmp_path, allow=False), "discover", httpserver.url_for("/"))
    assert result.exit_code == EXIT_SOURCE_FAILED
    assert result.stderr.startswith("aggregator: error: ")
    assert result.stderr.count("\n") == 1
    assert httpserver.log == []


# -- export-opml -------------------------------------------------------------------


def test_export_opml_lists_url_sources(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(config, "export-opml")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"<?xml")
    outlines = parse_opml(result.stdout_bytes, name="stdout")
    assert [(o.title, o.xml_url, o.categories) for o in outlines] == [
        ("Known", "https://known.example/feed.xml", ("News",)),
        ("tech-blog", "https://tech.example/atom", ("News", "Tech")),
    ]
    assert b"<title>Newsroom sources</title>" in result.stdout_bytes

    out = tmp_path / "subs.opml"
    written = cli(config, "export-opml", "--out", str(out))
    assert written.exit_code == 0
    assert out.read_bytes() == result.stdout_bytes
    assert "wrote 2 sources" in written.stderr


# -- import-opml -------------------------------------------------------------------


def test_slugify() -> None:
    assert slugify("Zürich Daily!") == "zurich-daily"
    assert slugify("   ") == "feed"
    assert slugify("日本") == "feed"
    assert len(slugify("x" * 200)) == 60


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a: 1\n", 'a: 1\ninclude: ["new.yaml"]\n'),
        ("a: 1", 'a: 1\ninclude: ["new.yaml"]\n'),
        ("include: []  # none yet\nb: 2\n", 'include: ["new.yaml"]  # none yet\nb: 2\n'),
        ("include: [x.yaml]\n", 'include: [x.yaml, "new.yaml"]\n'),
        (
            "include:\n  - x.yaml  # first\n  # a comment\n  - y.yaml\nsources: []\n",
            'include:\n  - x.yaml  # first\n  # a comment\n  - y.yaml\n  - "new.yaml"\n'
            "sources: []\n",
        ),
        ("include:\n- x.yaml", 'include:\n- x.yaml\n- "new.yaml"\n'),
    ],
)
def test_add_include(before: str, after: str) -> None:
    assert add_include(before, "new.yaml") == after


def test_import_opml_writes_included_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    before = config.read_text()
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML)
    result = cli(config, "import-opml", str(opml))
    assert result.exit_code == 0, result.output
    assert "added 5 sources" in result.stdout
    assert "skipped 1 already configured" in result.stdout

    text = config.read_text()
    assert text.startswith(before.rstrip("\n"))
    assert text.endswith('include: ["sources.d/imported.yaml"]\n')
    assert "# My aggregator config: keep this comment." in text
    assert "# the seed folder" in text

    loaded = load_config(config)
    by_name = {s.name: s for s in loaded.sources}
    assert set(by_name) == {
        "seeds",
        "known",
        "tech-blog",
        "zurich-daily",
        "tech-blog-2",
        "tech-blog-3",
        "untitled-example",
        "feed-digest",
    }
    assert by_name["zurich-daily"].location == "https://zh.example/rss"
    assert by_name["zurich-daily"].title == "Zürich Daily"
    assert by_name["zurich-daily"].tags == ("News",)
    assert by_name["tech-blog-2"].location == "https://blog-one.example/rss"
    assert by_name["tech-blog-2"].tags == ("News", "Tech")
    assert by_name["tech-blog-3"].location == "https://blog-two.example/rss"
    assert by_name["untitled-example"].location == "https://untitled.example/x.xml"
    assert by_name["untitled-example"].title is None
    assert (tmp_path / "sources.d" / "imported.yaml").read_text().startswith("# Sources imported")

    # Importing again adds nothing and leaves both files alone.
    imported = (tmp_path / "sources.d" / "imported.yaml").read_text()
    again = cli(config, "import-opml", str(opml))
    assert again.exit_code == 0
    assert "added 0 sources, skipped 6 already configured" in again.stdout
    assert config.read_text() == text
    assert (tmp_path / "sources.d" / "imported.yaml").read_text() == imported


def test_import_opml_appends_to_existing_include(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text(
        "sources:\n  - {name: more, url: 'https://more.example/rss'}\n"
    )
    config = write_config(tmp_path, include="include:\n  - more.yaml")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML)
    into = tmp_path / "feeds" / "opml.yaml"
    result = cli(config, "import-opml", str(opml), "--into", str(into))
    assert result.exit_code == 0, result.output
    assert 'include:\n  - more.yaml\n  - "feeds/opml.yaml"\n' in config.read_text()
    names = {s.name for s in load_config(config).sources}
    assert {"more", "zurich-daily", "untitled-example"} <= names

    # A second OPML file adds to the same sources file, which is already included.
    second = tmp_path / "second.opml"
    second.write_text(
        '<opml version="1.0"><body><outline text="Zürich Daily" '
        'xmlUrl="https://zh2.example/rss"/></body></opml>'
    )
    text = config.read_text()
    result = cli(config, "import-opml", str(second), "--into", str(into))
    assert result.exit_code == 0, result.output
    assert "added 1 sources" in result.stdout
    assert config.read_text() == text
    loaded = load_config(config)
    assert loaded.source("zurich-daily-2") is not None
    assert loaded.source("zurich-daily-2").location == "https://zh2.example/rss"  # type: ignore[union-attr]


def test_import_opml_restores_on_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    before = config.read_text()
    into = tmp_path / "bad.yaml"
    into.write_text("not_sources: 1\n")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML)
    result = cli(config, "import-opml", str(opml), "--into", str(into))
    assert result.exit_code == EXIT_CONFIG
    assert "files restored" in result.stderr
    assert result.stderr.count("\n") == 1
    assert config.read_text() == before
    assert into.read_text() == "not_sources: 1\n"


def test_import_opml_bad_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    opml = tmp_path / "subs.opml"
    opml.write_text('<!DOCTYPE x [<!ENTITY a "b">]><opml/>')
    result = cli(config, "import-opml", str(opml))
    assert result.exit_code == EXIT_CONFIG
    assert str(opml) in result.stderr
    assert not (tmp_path / "sources.d").exists()


def test_export_then_import_round_trip(tmp_path: Path) -> None:
    source_dir = tmp_path / "a"
    source_dir.mkdir()
    exported = cli(write_config(source_dir), "export-opml")
    opml = tmp_path / "subs.opml"
    opml.write_bytes(exported.stdout_bytes)
    target_dir = tmp_path / "b"
    target_dir.mkdir()
    (target_dir / "seeds").mkdir()
    fresh = target_dir / "aggregator.yaml"
    fresh.write_text("data_dir: var\nsources:\n  - {name: seeds, path: seeds}\n")
    result = cli(fresh, "import-opml", str(opml))
    assert result.exit_code == 0, result.output
    loaded = {s.location: s for s in load_config(fresh).sources}
    assert loaded["https://known.example/feed.xml"].tags == ("News",)
    assert loaded["https://known.example/feed.xml"].title == "Known"
    assert loaded["https://tech.example/atom"].tags == ("News", "Tech")
