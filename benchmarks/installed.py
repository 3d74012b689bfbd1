"""Make a source checkout run as an install does: its modules byte-compiled.

pip compiles every package it installs (reader, SQLAlchemy... in these
benchmarks), and a checkout run with bytecode writes allowed compiles itself
on its first run. Where ``PYTHONDONTWRITEBYTECODE`` is set (this project's
machines set it), a checkout is compiled from source by every process that
imports it: about 0.1 s more for each ``aggregator`` command, fork server and
worker (measured on ``update``: 0.78 s against 0.68 s), a cost no user pays.
So a benchmark compiles the checkout it measures before it starts.
"""

from __future__ import annotations

import compileall
import sys
from pathlib import Path

__all__ = ["byte_compile"]


def byte_compile(checkout: Path) -> None:
    """Write the ``__pycache__`` of ``checkout``'s ``aggregator`` package (quietly; idempotent)."""
    package = checkout / "aggregator"
    if not compileall.compile_dir(package, quiet=1, workers=0):
        print(f"warning: some modules under {package} did not compile", file=sys.stderr)
