"""The container image: its Dockerfile's promises, its config, its health check, and a real build.

The build runs where a Docker daemon answers; elsewhere that test is skipped
with the reason, and the rest still hold the image's parts: the config it
ships loads, and its HEALTHCHECK command tells a live daemon from a dead one.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from aggregator.config import load_config

from .conftest import REPO
from .daemonkit import DaemonProcess, free_port, get

DOCKERFILE = REPO / "Dockerfile"
IMAGE_CONFIG = REPO / "config" / "docker.yaml"
TOKEN = "docker-admin-token-0123456789"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _healthcheck_command() -> str:
    [args] = [rest for word, rest in _final_stage() if word == "HEALTHCHECK"]
    return args.split(" CMD ", 1)[1]


def test_dockerfile_promises_slim_non_root_volume_and_healthcheck() -> None:
    final = _final_stage()
    base = final[0][1]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base), base
    [user] = [rest for word, rest in final if word == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert [rest for word, rest in final if word == "VOLUME"] == ['["/data"]']
    assert "/healthz" in _healthcheck_command()
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "AGGREGATOR_DATA_DIR=/data" in env and "AGGREGATOR_CONFIG=" in env


def test_image_config_loads_with_and_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGGREGATOR_ADMIN_TOKEN", "AGGREGATOR_HOST", "AGGREGATOR_PORT"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(IMAGE_CONFIG)
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8080)
    assert config.server.admin_token is None  # unset: no /status page
    monkeypatch.setenv("AGGREGATOR_ADMIN_TOKEN", TOKEN)
    assert load_config(IMAGE_CONFIG).server.admin_token == TOKEN


def _check(port: int) -> int:
    """Run the image's HEALTHCHECK command here (its ``python`` is this interpreter)."""
    command = _healthcheck_command().replace("python -c", f"{sys.executable} -c", 1)
    run = subprocess.run(
        ["/bin/sh", "-c", command], env={"AGGREGATOR_PORT": str(port)}, timeout=30, check=False
    )
    return run.returncode


def test_healthcheck_command_tells_a_live_daemon_from_a_dead_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    (tmp_path / "seeds").mkdir()
    monkeypatch.setenv("AGGREGATOR_HOST", "127.0.0.1")
    monkeypatch.setenv("AGGREGATOR_PORT", str(port))
    monkeypatch.setenv("AGGREGATOR_SEEDS", str(tmp_path / "seeds"))
    data = str(tmp_path / "data")
    daemon = DaemonProcess(IMAGE_CONFIG, "--data-dir", data, log=tmp_path / "daemon.log")
    try:
        with daemon.diagnosed():
            while get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
                assert daemon.proc.poll() is None, "the daemon exited"
                time.sleep(0.1)
            assert _check(port) == 0
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    assert _check(port) != 0


def _docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client installed: the image build is not tested here")
    info = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"no Docker daemon answers (docker info: {reason})")
    return docker


def test_image_builds_runs_as_non_root_and_answers_healthz() -> None:
    docker = _docker()
    tag = f"aggregator-test:{uuid.uuid4().hex[:10]}"
    name = f"aggregator-test-{uuid.uuid4().hex[:10]}"
    port = free_port()
    build = subprocess.run(
        [docker, "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1800
    )
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        started = subprocess.run(
            [docker, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
             "-e", f"AGGREGATOR_ADMIN_TOKEN={TOKEN}", tag],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr

        def inspect() -> dict[str, object]:
            out = subprocess.run(
                [docker, "inspect", name], capture_output=True, text=True, timeout=60, check=True
            )
            return json.loads(out.stdout)[0]  # type: ignore[no-any-return]

        # The container's own HEALTHCHECK decides: wait while it is starting.
        while (health := inspect()["State"]["Health"]["Status"]) == "starting":  # type: ignore[index]
            time.sleep(1)
        assert health == "healthy"
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        uid = subprocess.run(
            [docker, "exec", name, "id", "-u"], capture_output=True, text=True, timeout=60
        )
        assert uid.stdout.strip() not in ("", "0")
        assert get(f"http://127.0.0.1:{port}/status")[0] == 401  # the token turned the page on
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True, timeout=120)
