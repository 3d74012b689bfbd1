"""A command imports only what it uses (issue 9, start-up).

Each check runs the command in a fresh interpreter and reads ``sys.modules``
afterwards: what was imported, not how long it took.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.store.database import head_revisions

from .daemonkit import free_port

#: loaded by ``run``/``serve`` or for HTML seed pages and migrations only
HEAVY = ("starlette", "uvicorn", "trafilatura", "alembic", "apscheduler", "watchfiles")

_PROBE = """
import json, sys
from aggregator.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules)}))
"""

SEED = """\
Iran and Armenia sign a transit agreement

Yerevan: The foreign ministers of Iran and Armenia signed an agreement on Monday on the
transit of goods through the Meghri corridor, officials said.
"""


def _last_line(code: str, *args: str, cwd: Path | None = None, exit_code: int = 0) -> str:
    """The last line ``code`` printed, run with ``args`` in a fresh interpreter (which must
    exit with ``exit_code``)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )
    assert out.returncode == exit_code, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _run(*args: str, modules: tuple[str, ...] = HEAVY) -> dict[str, object]:
    """The CLI run with ``args`` in a fresh interpreter: exit code, and which ``modules`` loaded."""
    result: dict[str, object] = json.loads(_last_line(_PROBE % (modules,), *args))
    return result


@pytest.fixture
def seed_config(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "transit.txt").write_text(SEED, encoding="utf-8")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\n"
        "sources:\n  - {name: seeds, path: seeds}\n"
        "topics:\n  - {name: iran, query: Iran}\n",
        encoding="utf-8",
    )
    return config


def test_update_migrates_in_a_child_and_never_loads_alembic_or_the_web_server(
    seed_config: Path,
) -> None:
    db = seed_config.parent / "var" / "aggregator.db"
    assert not db.exists()
    first = _run("--config", str(seed_config), "update", "--json")
    # a new database gets its schema from a child process: the update never
    # carries the migration tool
    assert first == {"code": 0, "loaded": []}
    with sqlite3.connect(db) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        stored = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    assert version in head_revisions()
    assert stored > 0

    second = _run("--config", str(seed_config), "update", "--json")
    assert second == {"code": 0, "loaded": []}


def test_help_and_check_load_no_engine(seed_config: Path) -> None:
    for args in (["--help"], ["--config", str(seed_config), "check"]):
        probe = (
            "import sys\nfrom aggregator.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            # numpy: the near-duplicate MinHash and the language model
            "engine = ('aggregator.update', 'aggregator.store.sql', 'numpy')\n"
            "print([m for m in engine if m in sys.modules])"
        )
        assert _last_line(probe, *args) == "[]", args


def test_head_revisions_read_from_the_files_match_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parent.parent / "aggregator" / "store" / "migrations")
    )
    assert head_revisions() == frozenset(ScriptDirectory.from_config(config).get_heads())


#: the CPU stage (parsing, sanitising, language, MinHash), discovery and publishing
CPU_STAGE = (
    "numpy",
    "lxml",
    "nh3",
    "bs4",
    "feedparser",
    "aggregator.parse",
    "aggregator.normalise",
    "aggregator.engine.work",
    "aggregator.publish.render",
    "feedgen",
    "jinja2",
)

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<link>http://example.org/</link><description>d</description>
<item><title>Iran and Armenia sign a transit agreement</title><guid>w1</guid>
<link>http://example.org/1</link><description>Transit of goods.</description></item>
</channel></rss>"""


def test_a_pass_of_304s_loads_no_cpu_stage(tmp_path: Path, httpserver: HTTPServer) -> None:
    """The main process imports parsing and the rest when a document needs them, not before."""

    def feed(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(RSS, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    httpserver.expect_request("/feed").respond_with_handler(feed)
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\nallow_networks: ['127.0.0.0/8']\n"
        f"sources:\n  - {{name: wire, url: '{httpserver.url_for('/feed')}'}}\n"
        "topics:\n  - {name: iran, query: Iran}\n",
        encoding="utf-8",
    )
    args = ("--config", str(config), "update", "--json")
    # nor what a script's `update --json` has no use for: the terminal's progress bar and table
    not_loaded = (*CPU_STAGE, "rich")
    first = _run(*args, modules=not_loaded)
    db = tmp_path / "var" / "aggregator.db"
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    second = _run(*args, modules=not_loaded)
    # the 200 was parsed (in a worker, called by name): this process loaded no parser
    assert first == {"code": 0, "loaded": []}
    assert stored == 1
    assert second == {"code": 0, "loaded": []}


#: RE2 too: no topic query of the probe's config has a /pattern/
_NOT_IN_THE_DAEMON = (*CPU_STAGE, "alembic", "httpx", "sqlalchemy.dialects.postgresql", "re2")

_DAEMON_PROBE = """
import asyncio, json, sys
from pathlib import Path
from aggregator.config import load_config
from aggregator.daemon import Daemon, DaemonSettings

from aggregator.update import preload

config = load_config(Path(sys.argv[1]))
preload(config)  # what run_daemon imports before it serves
daemon = Daemon(config, DaemonSettings(watch=False))
feed = config.data_dir / "public" / "topics" / "iran.atom"

async def main():
    running = asyncio.create_task(daemon.run())
    async with asyncio.timeout(100):
        while not (feed.exists() and b"transit" in feed.read_bytes()):
            await asyncio.sleep(0.05)
    loaded = sorted(m for m in %r if m in sys.modules)
    stages = daemon.ctx.stages
    modules = "sorted(__import__('sys').modules)"
    with stages.pool.borrowed() as parse, stages.publisher.borrowed() as publish:
        in_parse = set(parse.submit(eval, modules).result())
        in_publish = set(publish.submit(eval, modules).result())
    daemon.stop()
    await running
    print(json.dumps({
        "daemon": loaded,
        "parse worker": sorted(m for m in %r if m in in_parse),
        "publisher": sorted(m for m in %r if m in in_publish),
    }))

asyncio.run(main())
"""


#: what the daemon's parse workers never load: the renderer and the store it reads
_NOT_IN_ITS_PARSE_WORKERS = ("aggregator.publish.render", "feedgen", "sqlalchemy")
#: and its publishing process: the parsers
_NOT_IN_ITS_PUBLISHER = ("numpy", "nh3", "feedparser", "ftfy", "aggregator.engine.work")


def test_the_daemon_ingests_and_publishes_without_loading_the_cpu_stage(seed_config: Path) -> None:
    """Parsing and rendering run in the workers: the daemon itself never imports them.

    Nor alembic: the daemon starts on a new data folder, and its store is
    migrated in a child process. Nor, on seed folders alone, httpx (no source
    fetches) or SQLAlchemy's PostgreSQL dialect (the store is SQLite); nor RE2
    while no query has a pattern. Its exports run in a process of their own:
    a parse worker never loads the renderer and the store, the publishing
    process never loads the parsers.
    """
    text = seed_config.read_text(encoding="utf-8")
    seed_config.write_text(text + f"server: {{port: {free_port()}}}\n", encoding="utf-8")
    probe = _DAEMON_PROBE % (_NOT_IN_THE_DAEMON, _NOT_IN_ITS_PARSE_WORKERS, _NOT_IN_ITS_PUBLISHER)
    loaded = _last_line(probe, str(seed_config))
    assert json.loads(loaded) == {"daemon": [], "parse worker": [], "publisher": []}


#: what a parse worker digesting a remote feed has no use for: the event loop,
#: the store, the config, what only seed articles or old encodings need, and
#: the mojibake repairer while no text looks broken
_NOT_IN_A_PARSE_WORKER = (
    "ftfy",
    "asyncio",
    "sqlalchemy",
    "pydantic",
    "importlib.metadata",
    "yaml",
    "markdown_it",
    "charset_normalizer",
)

_WORKER_PROBE = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from aggregator.engine import CpuPool
from aggregator.model import SourceKind, SourceSpec

spec = SourceSpec(
    name="wire", kind=SourceKind.URL, location="http://example.org/feed",
    interval=timedelta(hours=1), timeout=timedelta(seconds=10), max_bytes=1 << 20,
)
pool = CpuPool(1)
try:
    digest = asyncio.run(pool.run(
        "wire", "aggregator.engine.work:digest_feed", sys.argv[1].encode(),
        spec=spec, url="http://example.org/feed", headers={}, now=datetime.now(UTC),
    ))
    with pool.borrowed() as worker:  # the same (only) worker
        loaded = worker.submit(eval, "sorted(__import__('sys').modules)").result()
finally:
    pool.close()
print(json.dumps({"items": len(digest.records), "loaded": [m for m in %r if m in loaded]}))
"""


def test_a_parse_worker_loads_the_parse_stack_alone() -> None:
    """A worker imports what parsing a feed needs: no event loop, store or config.

    Each of those modules is in every worker's memory for as long as it lives
    (and in the fork server's).
    """
    found = _last_line(_WORKER_PROBE % (_NOT_IN_A_PARSE_WORKER,), RSS.decode())
    assert json.loads(found) == {"items": 1, "loaded": []}


def test_a_command_loads_its_own_module_only(seed_config: Path) -> None:
    """``run`` and ``update`` import their command's module, not the other commands'."""
    from aggregator.cli import app, main

    modules = tuple(f"aggregator.cli.{m}" for m in sorted(set(app.COMMAND_MODULES.values())))
    update = _run("--config", str(seed_config), "update", "--json", modules=modules)
    assert update == {"code": 0, "loaded": ["aggregator.cli.ingest"]}
    check = _run("--config", str(seed_config), "check", modules=modules)
    assert check == {"code": 0, "loaded": ["aggregator.cli.configure"]}
    # Every command is where the map says, and the map names every command.
    listed = main.list_commands(click.Context(main))
    assert sorted(listed) == sorted(app.COMMAND_MODULES)
    for name, module in app.COMMAND_MODULES.items():
        command = main.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"aggregator.cli.{module}", name


_EXIT_PROBE = """
import atexit, gc, sys
# registered before the command's own handlers, so it runs after all of them
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
sys.argv = ["aggregator", *sys.argv[1:]]
from aggregator.launch import main
main()
"""


@pytest.mark.parametrize(
    ("args", "exit_code"), [(("--version",), 0), (("--config", "missing.yaml", "check"), 2)]
)
def test_a_command_leaves_its_heap_out_of_the_shutdowns_collections(
    tmp_path: Path, args: tuple[str, ...], exit_code: int
) -> None:
    """Whether it succeeds or fails, the command's process ends with its heap frozen.

    The interpreter's shutdown collects every generation: walking the heap a
    command built (SQLAlchemy, the config, what a pass left) took 0.1 s of
    every ``update``'s end.
    """
    last = _last_line(_EXIT_PROBE, *args, cwd=tmp_path, exit_code=exit_code)
    assert last == "frozen at exit: True"
