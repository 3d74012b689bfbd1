"""A process and its descendants, read from /proc: who they are, their memory and CPU."""

from __future__ import annotations

import os
from pathlib import Path


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, i = [pid], 0
    while i < len(found):
        found += children.get(found[i], [])
        i += 1
    return found


def tree_pss(pid: int) -> tuple[float, int]:
    """PSS (MiB) summed over ``pid`` and its descendants, and how many processes."""
    total, count = 0, 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        count += 1
                        break
        except OSError:
            continue
    return total / 1024, count


def tree_cpu(pid: int) -> float:
    """User + system seconds of ``pid`` (with the children it reaped) and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += (utime + stime + (cutime + cstime if p == pid else 0)) / tick
    return total


def children_named(pid: int, word: str) -> list[int]:
    """Live descendants of ``pid`` whose command line holds ``word``."""
    found = []
    for p in tree(pid)[1:]:
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if word.encode() in cmdline:
            found.append(p)
    return found
