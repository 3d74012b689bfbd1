"""The README's examples run as written (issue 23): its configuration example and its commands."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import REPO, run_cli

README = REPO / "README.md"


def _block_after(heading: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_configuration_example_loads_as_copied(tmp_path: Path) -> None:
    """Copied into config/aggregator.yaml beside a seeds/ folder, it passes ``check --strict``."""
    (tmp_path / "config").mkdir()
    (tmp_path / "seeds").mkdir()
    config = tmp_path / "config" / "aggregator.yaml"
    config.write_text(_block_after("## Configuration", "yaml"), encoding="utf-8")
    proc = run_cli(config, "check", "--strict")
    assert proc.returncode == 0, proc.stderr
    assert "topics:   2 (caucasus, desk)" in proc.stdout


def test_global_options_are_accepted_after_the_command(tmp_path: Path) -> None:
    """``aggregator check --config x`` as the README writes it."""
    config = tmp_path / "aggregator.yaml"
    config.write_text("data_dir: var\nsources: []\ntopics: []\n", encoding="utf-8")
    other = tmp_path / "elsewhere.yaml"
    other.write_text("data_dir: other\nsources: []\ntopics: []\n", encoding="utf-8")
    proc = run_cli(config, "check", "--config", str(other), "--log-level", "error")
    assert proc.returncode == 0, proc.stderr
    assert f"config:   {other}: ok" in proc.stdout
    assert f"data dir: {tmp_path / 'other'}" in proc.stdout
