"""The CLI's tables read at 80 columns: times as ages, short story ids, errors on lines."""

from __future__ import annotations

import json
import re
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.cli.app import minute, relative
from aggregator.cli.sources import due_in
from aggregator.cli.stories import short_id_width
from aggregator.config.units import format_duration, parse_duration, short_duration

from .conftest import invoke_cli

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
#: an ISO 8601 time as ``--json`` writes it, which no table shows any more
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@pytest.mark.parametrize(
    ("delta", "written", "short"),
    [
        (timedelta(0), "0s", "0s"),
        (timedelta(milliseconds=250), "250ms", "250ms"),
        (timedelta(seconds=45), "45s", "45s"),
        (timedelta(minutes=30), "30m", "30m"),
        (timedelta(hours=1, minutes=30), "1h30m", "1h30m"),
        (timedelta(days=2), "2d", "2d"),
        (timedelta(days=2, hours=3, minutes=4, seconds=5), "2d3h4m5s", "2d3h"),
        (timedelta(hours=1, seconds=5), "1h5s", "1h5s"),
    ],
)
def test_durations_are_written_as_the_config_writes_them(
    delta: timedelta, written: str, short: str
) -> None:
    assert format_duration(delta) == written
    assert short_duration(delta) == short


@given(st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_a_written_duration_reads_back_the_same(seconds: int) -> None:
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_times_of_polls_read_as_ages_and_stories_to_the_minute() -> None:
    assert relative(None, NOW) is None
    assert relative(NOW, NOW) == "now"
    assert relative(NOW - timedelta(seconds=42), NOW) == "42s ago"
    # Seconds are dropped beside minutes; two units at most.
    assert relative(NOW - timedelta(minutes=2, seconds=9), NOW) == "2m ago"
    assert relative(NOW + timedelta(minutes=29, seconds=59), NOW) == "in 29m"
    assert relative(NOW - timedelta(days=3, hours=4, minutes=5), NOW) == "3d4h ago"
    assert due_in(None, NOW) == "now"
    assert due_in(NOW - timedelta(seconds=20), NOW) == "now"  # the next tick takes it
    assert due_in(NOW - timedelta(hours=3, minutes=1), NOW) == "overdue 3h1m"
    assert due_in(NOW + timedelta(minutes=30), NOW) == "in 30m"
    assert minute(datetime(2026, 10, 3, 6, 30, 59, 123456, tzinfo=UTC)) == "2026-10-03 06:30"


def test_a_short_story_id_tells_the_listed_stories_apart() -> None:
    assert short_id_width([]) == 8
    assert short_id_width(["c6b73e24-dec3"]) == 8
    assert short_id_width(["c6b73e24-dec3", "2c713953-aaaa"]) == 8
    # Two ids sharing their first eleven characters need twelve.
    assert short_id_width(["c6b73e24-de00", "c6b73e24-de11", "00000000"]) == 12
    # Never longer than the ids themselves.
    assert short_id_width(["abc", "abd"]) == 3


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_sources_status_and_stories_fit_80_columns(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for fixture in sorted((Path(__file__).parent / "data" / "seeds").glob("*.txt"))[:6]:
        shutil.copy2(fixture, seeds / fixture.name)
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: var\n"
        "allow_networks: [127.0.0.0/8]\n"
        "sources:\n"
        "  - {name: seeds, path: seeds, interval: 30m}\n"
        f"  - {{name: broken, url: 'http://127.0.0.1:{closed_port()}/feed.xml', timeout: 2s}}\n"
        "topics:\n  - {name: everything, query: 'the OR a OR of'}\n",
        encoding="utf-8",
    )
    narrow = {"COLUMNS": "80"}
    code, _, err = invoke_cli(config, "update", env=narrow)
    assert code == 1, err  # the broken source fails; the seeds are read
    shown = {}
    for command in ("sources", "status", "stories"):
        code, out, err = invoke_cli(config, command, env=narrow)
        assert code == 0, err
        assert out.strip(), command
        # The tables fit (the lines below them, errors and problems, wrap as text does).
        wide = [line for line in out.splitlines() if len(line) > 80 and line[0] in "┏┃┡│└"]
        assert not wide, (command, wide)
        assert not ISO_TIME.search(out), (command, out)
        shown[command] = out
    for command in ("sources", "status"):
        rows = {line.split()[1]: line for line in shown[command].splitlines() if "│" in line}
        # A fixed 30m interval: the seeds are next due in 27 to 33 minutes (10 % jitter).
        assert re.search(r"│ in (2[7-9]|3[0-3])m ", rows["seeds"]), shown[command]
        # The error is a line of its own, the source named once.
        errors = [line for line in shown[command].splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith("error: broken: "), errors
        assert errors[0].count("broken") == 1
        assert "interval: seeds: 30m (fixed: every 30m)" in shown[command]
    # Every id the stories table shows is accepted back.
    listed = json.loads(invoke_cli(config, "stories", "--json")[1])
    ids = re.findall(r"^│ ([0-9a-f]{8,}) ", shown["stories"], re.MULTILINE)
    assert len(ids) == len(listed) > 1
    for short in ids:
        code, out, err = invoke_cli(config, "stories", "--explain", short, "--json")
        assert code == 0, err
        assert json.loads(out)["id"].removeprefix("urn:uuid:").startswith(short)
