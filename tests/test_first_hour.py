"""What a new user met in the first hour (issue 23), each driven as the user drives it: the CLI.

Two seed folders stand for two sources carrying the same story: the sample
seed in ``ledger``, a copy of its body in ``my-seeds``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from pytest_httpserver import HTTPServer

from .conftest import invoke_cli, run_cli, shared_path
from .daemonkit import free_port, get, running, wait_for

ATOM = "{http://www.w3.org/2005/Atom}"

SAMPLE = "000_a42e47609101a1fc.txt"
COPY = "001_bbbbbbbbbbbbbbbb.txt"
EXTRA = (
    "\nThe conference also heard from scholars of the region who spoke about water rights, "
    "trade corridors and the refugees still waiting to go home after decades away from "
    "their villages in the valleys.\n"
)
UNRELATED = (
    "Sourdough bakery opens downtown\n\n"
    "A new bakery selling sourdough loaves opened on the high street this morning, with "
    "queues around the block before the doors opened at seven. The owner said the starter "
    "had been in the family for forty years and that the ovens were bought from a closing "
    "bakery in the next town.\n"
)


def ok(config: Path, *args: str) -> str:
    """The command's output, run in this process (the error cases run the entry point)."""
    code, out, err = invoke_cli(config, *args)
    assert code == 0, err
    return out


def stories(config: Path, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(ok(config, "stories", "--json", *args))
    return found


def sample_body() -> str:
    """The sample seed without its "Read More" list: the article a copy repeats."""
    text = shared_path("seeds", SAMPLE).read_text(encoding="utf-8")
    return text.split("Read More:")[0]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ledger").mkdir()
    (tmp_path / "mine").mkdir()
    shutil.copy2(shared_path("seeds", SAMPLE), tmp_path / "ledger" / SAMPLE)
    return tmp_path


def write_config(root: Path, topics: str, extra: str = "") -> Path:
    path = root / "aggregator.yaml"
    path.write_text(
        "data_dir: var\n"
        "sources:\n"
        "  - {name: ledger, path: ledger, tags: [europe]}\n"
        "  - {name: my-seeds, path: mine}\n"
        f"topics:\n{topics}{extra}",
        encoding="utf-8",
    )
    return path


def test_a_story_stays_in_a_source_scoped_topic_when_another_copy_becomes_its_main_entry(
    workspace: Path,
) -> None:
    """Item 1: which entry represents a story must not change its topics."""
    config = write_config(
        workspace, "  - {name: scoped, query: Azerbaijan, sources: ['tag:europe']}\n"
    )
    ok(config, "update")
    (before,) = stories(config, "--topic", "scoped")
    # A fuller near-copy from a source outside the scope joins and becomes canonical.
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    ok(config, "update")
    (story,) = stories(config)
    assert story["canonical"]["source"] == "my-seeds"
    assert story["id"] == before["id"]
    assert story["topics"] == ["scoped"]
    assert [s["id"] for s in stories(config, "--topic", "scoped")] == [before["id"]]
    verdict = json.loads(ok(config, "explain", "scoped", story["id"], "--json"))
    assert verdict[0]["matched"] is True


def test_an_entry_whose_text_changes_is_placed_again(workspace: Path) -> None:
    """Item 2: a merge does not outlive the text that made it."""
    config = write_config(
        workspace,
        "  - {name: caucasus, query: Azerbaijan}\n  - {name: bread, query: sourdough}\n",
    )
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    ok(config, "update")
    (merged,) = stories(config)
    assert len(merged["entries"]) == 2
    # The copy is rewritten into an unrelated article.
    (workspace / "mine" / COPY).write_text(UNRELATED, encoding="utf-8")
    ok(config, "update")
    by_topic = {s["topics"][0]: s for s in stories(config)}
    assert set(by_topic) == {"caucasus", "bread"}
    caucasus, bread = by_topic["caucasus"], by_topic["bread"]
    # The story the untouched article is in keeps its id and its topic.
    assert caucasus["id"] == merged["id"]
    assert [e["source"] for e in caucasus["entries"]] == ["ledger"]
    assert [e["source"] for e in bread["entries"]] == ["my-seeds"]
    assert bread["id"] != merged["id"]
    joins = json.loads(ok(config, "stories", "--explain", caucasus["id"], "--json"))
    assert {j["source"] for j in joins["entries"]} == {"ledger"}


def test_rebuild_keeps_the_id_of_the_story_as_it_was_published(workspace: Path) -> None:
    """Item 3: a story that persists through ``stories --rebuild`` keeps its id."""
    (workspace / "ledger" / SAMPLE).unlink()
    # A short copy comes first and founds the story; the full article joins it
    # and becomes what the story is published as.
    half = sample_body().split("Stating that")[0]
    (workspace / "mine" / COPY).write_text(half, encoding="utf-8")
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan OR Araghchi}\n")
    ok(config, "update")
    shutil.copy2(shared_path("seeds", SAMPLE), workspace / "ledger" / SAMPLE)
    ok(config, "update")
    (story,) = stories(config)
    assert story["canonical"]["source"] == "ledger"
    assert len(story["entries"]) == 2
    # Stricter settings split the two tellings apart.
    config = write_config(
        workspace,
        "  - {name: caucasus, query: Azerbaijan OR Araghchi}\n",
        "dedup: {enabled: false}\n",
    )
    ok(config, "stories", "--rebuild")
    after = {s["canonical"]["source"]: s for s in stories(config)}
    assert set(after) == {"ledger", "my-seeds"}
    assert after["ledger"]["id"] == story["id"]
    assert after["my-seeds"]["id"] != story["id"]


def entry_ids(base: str, topic: str) -> list[str]:
    try:
        status, body = get(f"{base}topics/{topic}.atom")
    except OSError:  # not listening yet
        return []
    if status != 200:
        return []
    feed = ElementTree.fromstring(body)
    return [e.findtext(f"{ATOM}id") or "" for e in feed.iter(f"{ATOM}entry")]


def test_a_command_that_changes_the_store_reaches_the_running_daemon(workspace: Path) -> None:
    """Item 4: ``stories --rebuild`` beside a daemon shows in what it serves, no signal needed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    (workspace / "mine" / COPY).write_text(sample_body() + EXTRA, encoding="utf-8")
    server = f"server: {{host: 127.0.0.1, port: {port}}}\n"
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan}\n", server)
    # The same store, with near-duplicate matching off: a rebuild splits the story.
    strict = workspace / "strict.yaml"
    strict.write_text(
        config.read_text(encoding="utf-8") + "dedup: {enabled: false}\n", encoding="utf-8"
    )
    with running(config) as daemon, daemon.diagnosed():
        wait_for(lambda: len(entry_ids(base, "caucasus")) == 1, 120, "the merged story served")
        ok(strict, "stories", "--rebuild")
        wait_for(lambda: len(entry_ids(base, "caucasus")) == 2, 60, "the split stories served")
        assert "the store changed outside this daemon" in daemon.log()


def test_removing_a_source_from_an_included_file_takes_its_stories_out(tmp_path: Path) -> None:
    """Item 5: included files are watched; a command that removes a source reaches the feeds."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    for name in ("ledger", "wire", "extra"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.txt").write_text(
            f"Karabakh report from {name}\n\nThe {name} desk reports on Karabakh: talks about "
            f"the {name} corridor resumed on Monday with delegations from both sides.\n",
            encoding="utf-8",
        )
    (tmp_path / "sources.d").mkdir()
    included = tmp_path / "sources.d" / "imported.yaml"
    included.write_text(
        "sources:\n  - {name: wire, path: ../wire}\n  - {name: extra, path: ../extra}\n",
        encoding="utf-8",
    )
    main = (
        f"data_dir: var\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        "include: [sources.d/imported.yaml]\n"
        "sources:\n  - {name: ledger, path: ledger}\n"
        "topics:\n  - {name: karabakh, query: Karabakh}\n"
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(main, encoding="utf-8")
    # The same store and topics, without the source "extra" (as an edited copy would be).
    edited = tmp_path / "edited.yaml"
    edited.write_text(main.replace("include: [sources.d/imported.yaml]\n", ""), encoding="utf-8")
    with running(config) as daemon, daemon.diagnosed():
        wait_for(lambda: len(entry_ids(base, "karabakh")) == 3, 120, "three sources served")
        # A command run against a config without "wire" and "extra" removes their
        # stories from the store: the daemon serves that without a signal.
        ok(edited, "sources")
        wait_for(lambda: len(entry_ids(base, "karabakh")) == 1, 60, "the removed sources gone")
        # Editing the included file alone makes the daemon reload.
        included.write_text("sources:\n  - {name: wire, path: ../wire}\n", encoding="utf-8")
        wait_for(lambda: "imported.yaml changed: reloading" in daemon.log(), 60, "the reload")
        wait_for(lambda: len(entry_ids(base, "karabakh")) == 2, 60, "wire back, extra not")


def healthz(base: str) -> tuple[int, dict[str, Any]]:
    try:
        status, body = get(f"{base}healthz")
    except OSError:  # not listening yet
        return 0, {}
    found: dict[str, Any] = json.loads(body) if body else {}
    return status, found


def test_healthz_is_503_only_when_the_daemon_itself_cannot_work(tmp_path: Path) -> None:
    """Item 6: a dead feed is reported; a daemon that cannot publish answers 503."""
    port, dead = free_port(), free_port()
    base = f"http://127.0.0.1:{port}/"
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"data_dir: var\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        "allow_networks: ['127.0.0.0/8']\n"
        "defaults: {interval: 1s, min_interval: 0.1s, timeout: 2s}\n"
        f"sources:\n  - {{name: dead, url: 'http://127.0.0.1:{dead}/feed.xml'}}\n"
        "topics:\n  - {name: all, query: the}\n",
        encoding="utf-8",
    )
    with running(config) as daemon, daemon.diagnosed():
        found = wait_for(
            lambda: (h := healthz(base))[1].get("sources") == "degraded" and h,
            60,
            "the dead source to count as degraded",
        )
        status, body = found
        assert status == 200
        assert body["status"] == "ok"
        assert body["failing"][0]["source"] == "dead"
        _, metrics = get(f"{base}metrics")
        assert b"aggregator_sources_failing 1.0" in metrics
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    # The export folder is a file: the daemon cannot publish, and says so.
    shutil.rmtree(tmp_path / "var" / "public")
    (tmp_path / "var" / "public").write_text("not a folder", encoding="utf-8")
    with running(config) as daemon, daemon.diagnosed():
        status, body = wait_for(
            lambda: (h := healthz(base))[0] and h, 120, "the daemon to answer /healthz"
        )
        assert status == 503
        assert body["status"] == "unhealthy"
        assert any("publishing fails" in p for p in body["problems"])


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_port_in_use_is_one_line_naming_the_address_and_the_setting(
    tmp_path: Path, command: str
) -> None:
    """Item 7: exit 5, one line, and no "serving" before the socket is ours."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"data_dir: var\nserver: {{host: 127.0.0.1, port: {port}}}\n"
            "sources: []\ntopics:\n  - {name: all, query: the}\n",
            encoding="utf-8",
        )
        proc = run_cli(config, command)
    assert proc.returncode == 5, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"aggregator: error: 127.0.0.1:{port}: cannot listen: Address already in use; "
        f"set server.port (or server.host) in {config} to a free address"
    ]
    assert "Traceback" not in proc.stderr
    assert "serving" not in proc.stderr


def test_publish_under_a_file_is_one_line_and_exit_4(workspace: Path) -> None:
    """Item 8: ``publish --out`` to a path under a file."""
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan}\n")
    (workspace / "afile").write_text("", encoding="utf-8")
    proc = run_cli(config, "publish", "--out", str(workspace / "afile" / "public"))
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"aggregator: error: {workspace / 'afile' / 'public'}: cannot create export folder: "
        f"[Errno 20] Not a directory: '{workspace / 'afile' / 'public'}'"
    ]


def test_check_warns_about_what_fails_at_run_time(tmp_path: Path) -> None:
    """Item 9: warnings with key paths; exit 0, or 2 with ``--strict``."""
    (tmp_path / "var").write_text("", encoding="utf-8")  # data_dir is a file
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\n"
        "sources:\n"
        "  - {name: seeds, path: no-such-folder}\n"
        "  - {name: local, url: 'http://127.0.0.1:9/feed.xml'}\n"
        "  - {name: again, url: 'http://127.0.0.1:9/feed.xml'}\n"
        "topics:\n  - {name: all, query: the}\n"
        "  - name: hooked\n    query: talks\n"
        "    notify: [{url: 'http://10.1.2.3/hook', secret: 'sixteen-chars-or-more'}]\n",
        encoding="utf-8",
    )
    proc = run_cli(config, "check")
    assert proc.returncode == 0, proc.stderr
    assert f"{config}: 6 warnings" in proc.stdout
    file = f"aggregator: warning: {config}"
    assert proc.stderr.splitlines() == [
        f"{file}: data_dir: {tmp_path / 'var'} is a file, not a folder",
        f"{file}: sources[0] (seeds).path: seed folder {tmp_path / 'no-such-folder'} "
        "does not exist",
        f"{file}: sources[1] (local).url: loopback address 127.0.0.1 is refused unless "
        "allow_networks admits it: add allow_networks: [127.0.0.0/8]",
        f"{file}: sources[2] (again).url: the same URL as sources[1] (local): "
        "http://127.0.0.1:9/feed.xml",
        f"{file}: sources[2] (again).url: loopback address 127.0.0.1 is refused unless "
        "allow_networks admits it: add allow_networks: [127.0.0.0/8]",
        f"{file}: topics[1] (hooked).notify[0].url: private address 10.1.2.3 is refused "
        "unless allow_networks admits it: add allow_networks: [10.1.2.3/32]",
    ]
    assert run_cli(config, "check", "--strict").returncode == 2
    # The fetch itself says what to add.
    (tmp_path / "var").unlink()
    (tmp_path / "no-such-folder").mkdir()
    update = run_cli(config, "update", "--source", "local")
    assert "add allow_networks: [127.0.0.0/8] to the config" in update.stdout + update.stderr


def test_problems_are_kept_per_source_and_seed_file_and_shown(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """Item 10: what the log said is still in ``sources`` and ``status`` later."""
    httpserver.expect_request("/feed.xml").respond_with_data(
        "<rss version='2.0'><channel><title>W</title><item><title>A & B</title>"
        "<guid>a</guid><description>the talks</description></item></channel></rss>",
        content_type="application/rss+xml",
    )
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "empty.txt").write_text("", encoding="utf-8")
    (seeds / "binary.txt").write_bytes(b"\x00\x01binary\x00")
    (seeds / "fine.txt").write_text("Fine\n\nThe talks went fine.\n", encoding="utf-8")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\n"
        "sources:\n  - {name: seeds, path: seeds}\n"
        f"  - {{name: wire, url: '{httpserver.url_for('/feed.xml')}'}}\n"
        "topics:\n  - {name: all, query: talks}\n",
        encoding="utf-8",
    )
    run_cli(config, "update")
    # A second pass reads no seed file again: their problems stay all the same.
    run_cli(config, "update", "--source", "seeds")
    wanted = {
        "seeds: empty.txt: empty file",
        "seeds: binary.txt: binary file (contains NUL bytes), not a text document",
    }
    listed = {r["name"]: r for r in json.loads(ok(config, "sources", "--json"))}
    assert set(listed["seeds"]["problems"]) == wanted
    [lenient] = listed["wire"]["problems"]
    assert "not well-formed, read leniently" in lenient
    status = {s["name"]: s for s in json.loads(ok(config, "status", "--json"))["sources"]}
    assert set(status["seeds"]["problems"]) == wanted
    assert status["wire"]["problems"] == [lenient]
    for command in ("sources", "status"):
        shown = ok(config, command)
        assert "problem: seeds: empty.txt: empty file" in shown
        assert f"problem: {lenient}" in shown
    # A file fixed (or gone) takes its problem with it.
    (seeds / "empty.txt").write_text("Filled\n\nNow there are talks.\n", encoding="utf-8")
    (seeds / "binary.txt").unlink()
    run_cli(config, "update", "--source", "seeds")
    listed = {r["name"]: r for r in json.loads(ok(config, "sources", "--json"))}
    assert listed["seeds"]["problems"] == []


def test_a_story_id_is_accepted_with_or_without_its_prefix_or_by_a_unique_start(
    workspace: Path,
) -> None:
    """Item 11: what ``stories`` shows can be pasted back into every command."""
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan}\n")
    ok(config, "update")
    (story,) = stories(config)
    full = story["id"]
    bare = full.removeprefix("urn:uuid:")
    assert f"│ {bare[:8]} " in ok(config, "stories")  # its start, as git shortens a hash
    for given in (full, bare, bare[:8]):
        joins = json.loads(ok(config, "stories", "--explain", given, "--json"))
        assert joins["id"] == full
        [verdict] = json.loads(ok(config, "explain", "caucasus", given, "--json"))
        assert verdict["id"] == full
        assert verdict["matched"] is True
    for command in (["stories", "--explain", "ffff0000"], ["explain", "caucasus", "ffff0000"]):
        proc = run_cli(config, *command)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (
            "aggregator: error: no story 'ffff0000' (see aggregator stories)"
        )


def test_every_command_follows_the_data_folder_the_daemon_runs_on(workspace: Path) -> None:
    """Item 12: ``--data-dir`` and ``AGGREGATOR_DATA_DIR`` for every command."""
    config = write_config(workspace, "  - {name: caucasus, query: Azerbaijan}\n")
    elsewhere = workspace / "elsewhere"
    env = {"AGGREGATOR_DATA_DIR": str(elsewhere)}
    assert run_cli(config, "update", env=env).returncode == 0
    assert (elsewhere / "aggregator.db").is_file()
    for args, environment in (
        (("--data-dir", str(elsewhere)), None),  # after the command
        ((), env),
    ):
        listed = json.loads(ok_env(config, environment, "sources", "--json", *args))
        assert {r["name"]: r["items"] for r in listed} == {"ledger": 1, "my-seeds": 0}
        found = json.loads(ok_env(config, environment, "stories", "--json", *args))
        assert len(found) == 1
        status = json.loads(ok_env(config, environment, "status", "--json", *args))
        assert {s["name"]: s["state"] for s in status["sources"]}["ledger"] != "new"
    assert not (workspace / "var").exists()


def ok_env(config: Path, env: dict[str, str] | None, *args: str) -> str:
    code, out, err = invoke_cli(config, *args, env=env)
    assert code == 0, err
    return out


def test_small_things_a_new_user_meets(tmp_path: Path, httpserver: HTTPServer) -> None:
    """Item 14 (in part): a gone source, scalar lists, a bad topic name, a quiet first run."""
    httpserver.expect_request("/gone.xml").respond_with_data("gone", status=410)
    (tmp_path / "seeds").mkdir()
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\n"
        "sources:\n  - {name: seeds, path: seeds, tags: markets}\n"
        f"  - {{name: old, url: '{httpserver.url_for('/gone.xml')}'}}\n"
        "topics:\n  - {name: markets, query: shares, sources: 'tag:markets', lang: en}\n",
        encoding="utf-8",
    )
    first = run_cli(config, "--log-level", "info", "update")
    assert "alembic" not in first.stderr
    assert "Running upgrade" not in first.stderr
    listed = {r["name"]: r for r in json.loads(ok(config, "sources", "--json"))}
    assert listed["old"]["gone"] is True
    assert listed["old"]["next_due_at"] is None
    assert "never (gone)" in ok(config, "sources")
    status = {s["name"]: s for s in json.loads(ok(config, "status", "--json"))["sources"]}
    assert status["old"]["state"] == "gone"
    assert status["old"]["next_due"] is None
    assert "never (gone)" in ok(config, "status")
    config.write_text(
        "data_dir: var\nsources: []\ntopics:\n  - {name: Markets Daily, query: shares}\n",
        encoding="utf-8",
    )
    proc = run_cli(config, "check")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"aggregator: error: {config}: topics[0].name: 'Markets Daily' is not a valid name: "
        "use 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit"
    )


def test_a_moved_source_shows_where_it_moved(tmp_path: Path, httpserver: HTTPServer) -> None:
    """Item 14: a permanent redirect's new URL is shown by ``sources`` and ``status``."""
    new = httpserver.url_for("/new.xml")
    httpserver.expect_request("/old.xml").respond_with_data(
        "", status=301, headers={"Location": new}
    )
    httpserver.expect_request("/new.xml").respond_with_data(
        "<rss version='2.0'><channel><title>W</title><item><guid>a</guid><title>Talks</title>"
        "<description>the talks</description></item></channel></rss>",
        content_type="application/rss+xml",
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\n"
        f"sources:\n  - {{name: wire, url: '{httpserver.url_for('/old.xml')}'}}\n"
        "topics:\n  - {name: all, query: talks}\n",
        encoding="utf-8",
    )
    ok(config, "update")
    [listed] = json.loads(ok(config, "sources", "--json"))
    assert listed["moved_to"] == new
    line = f"moved: wire: permanently redirected to {new} (update its url: in the config)"
    assert line in ok(config, "sources")
    [status] = json.loads(ok(config, "status", "--json"))["sources"]
    assert status["state"] == "moved"
    assert status["moved_to"] == new
    assert line in ok(config, "status")


def test_a_markdown_seeds_summary_shows_no_markdown(tmp_path: Path) -> None:
    """Item 14: the published summary is the lead's text, not its ``**`` and ``_``."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "strike.md").write_text(
        "# Port strike ends after two weeks\n\n"
        "**ANTWERP, Dec 6** — Dock workers returned to the terminals on _Saturday_ after the "
        "unions accepted a **new** pay offer, the port authority said.\n\n"
        "Ships had queued at anchor for days.\n",
        encoding="utf-8",
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nsources:\n  - {name: seeds, path: seeds}\n"
        "topics:\n  - {name: ports, query: strike}\n",
        encoding="utf-8",
    )
    ok(config, "update")
    ok(config, "publish")
    feed = json.loads((tmp_path / "var/public/topics/ports.json").read_text(encoding="utf-8"))
    [item] = feed["items"]
    assert "Dock workers returned to the terminals on Saturday" in item["summary"]
    assert "*" not in item["summary"] and "_" not in item["summary"]
