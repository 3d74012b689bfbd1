"""Shared fixtures: paths to shared data, a temporary config, and the store backends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO.parent / "shared"


def run_cli(
    config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``aggregator --config CONFIG ARGS...`` in a subprocess, on this checkout's package.

    ``env`` adds to (or overrides) this process's environment; ``AGGREGATOR_CONFIG`` is dropped.
    """
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    full_env.pop("AGGREGATOR_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def invoke_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``aggregator --config CONFIG ARGS...`` in this process: exit code, stdout, stderr.

    For the many short commands of one test; :func:`run_cli` runs the real entry point.
    """
    from click.testing import CliRunner

    from aggregator.cli import app, main

    # The CLI makes its rich consoles on first use, sized by COLUMNS then: make
    # them again so each invocation gets the width its env asks for.
    app.out_console._console = None
    app.err_console._console = None
    full_env: dict[str, str | None] = {"COLUMNS": "200", "AGGREGATOR_CONFIG": None, **(env or {})}
    done = CliRunner().invoke(main, ["--config", str(config), *args], env=full_env)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.exit_code, done.stdout, done.stderr


def seed_lines() -> list[str]:
    """The lines of three words or more of the shipped seed articles: many languages."""
    return [
        line
        for path in sorted((REPO / "tests" / "data" / "seeds").iterdir())
        if path.suffix in (".txt", ".md", ".html")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(line.split()) >= 3
    ]


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skip when it is absent, except under CI where that fails."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must provide ../shared beside the checkout")
        pytest.skip(f"{path} is absent: the shared data folder is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver's one server per session (per xdist worker) listens on 127.0.0.1.

    "localhost" may resolve to ::1, which the SSRF guard refuses; and one
    module's choice must not depend on which module a worker runs first.
    """
    return ("127.0.0.1", 0)


@pytest.fixture
def sample_seed() -> Path:
    """The user's sample seed file."""
    return shared_path("seeds", "000_a42e47609101a1fc.txt")


PG_ADMIN_URL = os.environ.get("AGGREGATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip (fail under CI) when the PostgreSQL test server is not reachable."""
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")


@contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (``postgresql+psycopg://`` URL), dropped afterwards."""
    require_postgres()
    import psycopg

    name = f"aggregator_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL for each store backend."""
    if request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'data' / 'aggregator.db'}"
        return
    if request.param == "sqlite-memory":
        yield "sqlite://"
        return
    with pg_database() as url:
        yield url
