"""A command imports only what it uses (issue 9, start-up).

Each check runs the command in a fresh interpreter and reads ``sys.modules``
afterwards: what was imported, not how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.store.database import head_revisions

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


def _run(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
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


def test_update_loads_alembic_only_to_migrate_and_never_the_web_server(
    seed_config: Path,
) -> None:
    first = _run("--config", str(seed_config), "update", "--json")
    assert first["code"] == 0
    # a new database needs its schema: the migration tool is loaded for that
    assert first["loaded"] == ["alembic"]

    second = _run("--config", str(seed_config), "update", "--json")
    assert second == {"code": 0, "loaded": []}
    db = seed_config.parent / "var" / "aggregator.db"
    assert db.exists()


def test_help_and_check_load_no_engine(seed_config: Path) -> None:
    for args in (["--help"], ["--config", str(seed_config), "check"]):
        probe = (
            "import sys\nfrom aggregator.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            # numpy: the near-duplicate MinHash and the language model
            "engine = ('aggregator.pipeline', 'aggregator.store.sql', 'numpy')\n"
            "print([m for m in engine if m in sys.modules])"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        assert out.stdout.strip().splitlines()[-1] == "[]", args


def test_head_revisions_read_from_the_files_match_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parent.parent / "aggregator" / "store" / "migrations")
    )
    assert head_revisions() == frozenset(ScriptDirectory.from_config(config).get_heads())
