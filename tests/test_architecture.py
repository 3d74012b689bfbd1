"""The module map holds: imports point one way; each third-party library lives behind one module."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "aggregator"

#: third-party library -> the only modules allowed to import it
_CLI = {
    "aggregator.cli",
    "aggregator.cli.app",
    "aggregator.cli.configure",
    "aggregator.cli.ingest",
    "aggregator.cli.manage",
    "aggregator.cli.opml",
    "aggregator.cli.serving",
    "aggregator.cli.sources",
    "aggregator.cli.stories",
    "aggregator.cli.topics",
}

CONFINED = {
    # the fetcher, and its pool per origin (a transport is an httpx type)
    # (and the pinned connections under it: httpcore is httpx's engine)
    "httpx": {
        "aggregator.sources.http",
        "aggregator.sources.pinning",
        "aggregator.sources.transports",
    },
    "httpcore": {"aggregator.sources.http", "aggregator.sources.pinning"},
    # the bounded decoders
    "brotli": {"aggregator.sources.decoding"},
    "feedparser": {"aggregator.parse.feeds"},
    "feedgen": {"aggregator.publish.atom"},
    "bs4": {"aggregator.sources.discover", "aggregator.text.selector"},
    # full_content's CSS selectors walk bs4 trees: one leaf module holds both.
    "soupsieve": {"aggregator.text.selector"},
    "trafilatura": {"aggregator.parse.article"},
    "nh3": {"aggregator.normalise.sanitise"},
    "re2": {"aggregator.topics.pattern"},
    "py3langid": {"aggregator.text.language"},
    # language detection's model (and its tables, read a row at a time), and
    # MinHash for near-duplicate stories (and the semantic signal's embeddings
    # and their brute-force search)
    "numpy": {
        "aggregator.text.language",
        "aggregator.text.rows",
        "aggregator.stories.minhash",
        "aggregator.stories.semantic",
        "aggregator.stories.vecindex",
    },
    # the semantic extra: wordllama's shipped weights and tokenizer, opened by path
    "wordllama": {"aggregator.stories.semantic"},
    "safetensors": {"aggregator.stories.semantic"},
    "tokenizers": {"aggregator.stories.semantic"},
    "ftfy": {"aggregator.parse.mojibake"},
    "jinja2": {"aggregator.publish.html"},
    "starlette": {"aggregator.web", "aggregator.web.server", "aggregator.web.callbacks"},
    "uvicorn": {"aggregator.web.server"},
    # The store is split by concern; each part runs its own statements.
    "sqlalchemy": {
        "aggregator.store.batch",
        "aggregator.store.buffers",
        "aggregator.store.bulk",
        "aggregator.store.copy",
        "aggregator.store.database",
        "aggregator.store.wal",
        "aggregator.store.desk",
        "aggregator.store.edits",
        "aggregator.store.entries",
        "aggregator.store.files",
        "aggregator.store.listing",
        "aggregator.store.lookups",
        "aggregator.store.membership",
        "aggregator.store.merge",
        "aggregator.store.outline",
        "aggregator.store.polls",
        "aggregator.store.push",
        "aggregator.store.rules",
        "aggregator.store.rebuild",
        "aggregator.store.schema",
        "aggregator.store.semindex",
        "aggregator.store.sources",
        "aggregator.store.sql",
        "aggregator.store.stamps",
        "aggregator.store.stories",
        "aggregator.store.topics",
        "aggregator.store.writer",
        "aggregator.store.migrations.env",
    },
    "alembic": {"aggregator.store.database", "aggregator.store.migrations.env"},
    "apscheduler": {"aggregator.daemon.core"},
    # The job queue of the scale-out workers, and the advisory locks beside it.
    "procrastinate": {"aggregator.workers.queue"},
    "psycopg": {"aggregator.workers.queue"},
    "watchfiles": {"aggregator.runtime.watch"},
    "prometheus_client": {"aggregator.runtime.metrics"},
    "yaml": {"aggregator.config.files", "aggregator.parse.article"},
    # the config models: the main file, its shared field types, the source keys, the push settings
    "pydantic": {
        "aggregator.config",
        "aggregator.config.base",
        "aggregator.config.sourcekeys",
        "aggregator.config.push",
    },
    # The command line, one module per group of commands.
    "click": _CLI,
    "rich": _CLI,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_third_party_libraries_live_behind_one_module() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "versions" in path.parts:
            continue  # Alembic revisions use alembic and sqlalchemy by nature
        module = _module_name(path)
        for library in _imports(path) & set(CONFINED):
            if module not in CONFINED[library]:
                offenders.append(f"{module} imports {library}")
    assert offenders == []


def test_import_layers() -> None:
    beside = Path(sys.executable).parent / "lint-imports"
    lint = str(beside) if beside.exists() else shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports (import-linter, in the test extra) is not installed")
    proc = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
