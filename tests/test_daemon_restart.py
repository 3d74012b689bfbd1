"""Restart reconciliation: what changed while the daemon was down is published seconds after start.

Each test runs the real daemon as a subprocess on a seed folder polled only
hourly, so nothing but the start-up reconciliation can pick the changes up
within the test's wait.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import feedparser

from .daemonkit import DaemonProcess, free_port, get, wait_for, write_seed_config

#: generous for a busy 2-core machine (a loaded one took over 30 s to start and
#: publish), and far below the hourly interval
DEADLINE = 120


def seed_text(title: str) -> str:
    # Distinct words per seed so no two are merged into one story.
    words = " ".join(f"{title.split()[-1]}x{k}" for k in range(5))
    return f"{title}\n\nThe Karabakh observers counted {words} on the line today.\n"


def setup(tmp_path: Path, titles: list[str]) -> tuple[Path, Path, str]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n, title in enumerate(titles):
        (seeds / f"{n:03d}.txt").write_text(seed_text(title), encoding="utf-8")
    port = free_port()
    config = write_seed_config(tmp_path, port=port, max_items=200)
    return config, seeds, f"http://127.0.0.1:{port}/"


def titles(base: str) -> set[str]:
    status, body = get(f"{base}topics/karabakh.atom")
    if status != 200:
        return set()
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return {e.title for e in parsed.entries}


def start_and_publish(config: Path, base: str, expected: set[str]) -> DaemonProcess:
    daemon = DaemonProcess(config)
    try:
        wait_for(lambda: titles(base) == expected, DEADLINE, f"{len(expected)} titles published")
    except BaseException:
        daemon.kill()
        raise
    return daemon


def stop(daemon: DaemonProcess) -> None:
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log()[-2000:]


def test_files_added_while_stopped_are_published_at_restart(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(3)]
    config, seeds, base = setup(tmp_path, first)
    stop(start_and_publish(config, base, set(first)))

    added = [f"Karabakh bulletin {n}" for n in range(20)]
    for n, title in enumerate(added):
        (seeds / f"{100 + n:03d}.txt").write_text(seed_text(title), encoding="utf-8")
    stop(start_and_publish(config, base, set(first) | set(added)))


def test_files_deleted_while_stopped_leave_the_feed(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(5)]
    config, seeds, base = setup(tmp_path, first)
    stop(start_and_publish(config, base, set(first)))

    (seeds / "001.txt").unlink()
    (seeds / "003.txt").unlink()
    stop(start_and_publish(config, base, set(first) - {first[1], first[3]}))


def test_files_written_just_before_kill_are_published_at_restart(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(3)]
    config, seeds, base = setup(tmp_path, first)
    daemon = start_and_publish(config, base, set(first))
    # Published means the folder's update saved its state: the next poll is an
    # hour away. Files written now and killed before the watcher's debounce
    # ends are known to no one but the folder.
    late = [f"Karabakh flash {n}" for n in range(10)]
    for n, title in enumerate(late):
        (seeds / f"{200 + n:03d}.txt").write_text(seed_text(title), encoding="utf-8")
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.wait(10)
    stop(start_and_publish(config, base, set(first) | set(late)))


def test_restart_with_nothing_changed_reads_no_file_contents(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(5)]
    config, seeds, base = setup(tmp_path, first)
    daemon = start_and_publish(config, base, set(first))
    stop(daemon)
    runs = daemon.log().count("seeds: ok,")

    # New bytes behind the same size and mtime: only a read of the contents
    # could see them, and the reconciliation's stat pass must not read.
    path = seeds / "002.txt"
    before = path.stat()
    text = path.read_text(encoding="utf-8").replace("report 2", "secret 2")
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size

    daemon = DaemonProcess(config)
    try:
        wait_for(lambda: daemon.log().count("seeds: ok,") > runs, DEADLINE, "the reconciliation")
        line = daemon.log().split("seeds: ok,")[-1].splitlines()[0]
        assert line.startswith(" 0 new, 0 updated, 5 unchanged, 0 removed, 0 problems"), line
        assert titles(base) == set(first)
        stop(daemon)
    finally:
        daemon.kill()


def test_a_seed_folder_added_by_a_reload_is_read_at_once(tmp_path: Path) -> None:
    first = [f"Karabakh report {n}" for n in range(2)]
    config, _seeds, base = setup(tmp_path, first)
    more = tmp_path / "more"
    more.mkdir()
    added = [f"Karabakh dispatch {n}" for n in range(4)]
    for n, title in enumerate(added):
        (more / f"{n:03d}.txt").write_text(seed_text(title), encoding="utf-8")
    daemon = start_and_publish(config, base, set(first))
    try:
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("sources:\n", "sources:\n  - name: more\n    path: more\n"),
            encoding="utf-8",
        )
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: titles(base) == set(first) | set(added), DEADLINE, "the added folder's seeds"
        )
        stop(daemon)
    finally:
        daemon.kill()
