"""Shell completion (click's own, as README documents it) completes commands and options."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _aggregator() -> str:
    beside = Path(sys.executable).parent / "aggregator"
    found = str(beside) if beside.exists() else shutil.which("aggregator")
    if found is None:
        pytest.fail("the aggregator script is not installed (pip install -e .)")
    return found


def _complete(env: dict[str, str]) -> str:
    run = subprocess.run(
        [_aggregator()],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(shell: str) -> None:
    script = _complete({"_AGGREGATOR_COMPLETE": f"{shell}_source"})
    assert "_AGGREGATOR_COMPLETE" in script


def test_completes_commands_and_options() -> None:
    words = {"_AGGREGATOR_COMPLETE": "bash_complete"}
    commands = _complete({**words, "COMP_WORDS": "aggregator sta", "COMP_CWORD": "1"})
    assert commands.split() == ["plain,status"]
    options = _complete({**words, "COMP_WORDS": "aggregator status --j", "COMP_CWORD": "2"})
    assert options.split() == ["plain,--json"]
