"""Ingest benchmark: ``aggregator update`` vs lemon24/reader vs a plain HTTP client.

Run: ``python benchmarks/bench_ingest.py [--feeds 1000] [--seed 1] [--only ours|reader|floor|daemon]
[--json FILE] [--keep DIR]``; at the same concurrency as reader (one host, ours' per-host limit
= reader's workers): ``--hosts 1 --per-host 4 --reader-workers 4 --only ours --only reader``

In one run, on one seeded corpus (``ingest_corpus.py``: RSS 2.0, Atom and JSON
Feed, about 58 entries per feed, HTML content of varied size and nesting)
served on loopback by ``ingest_server.py`` (ETag/Last-Modified with 304s,
gzip, slow feeds, 404s, 500s and feeds that never answer), it measures:

* **ours**: ``aggregator update --json`` as a subprocess on a generated config
  and a fresh data folder: a first pass (every feed new), then a second pass
  (every feed answers 304);
* **reader**: lemon24/reader's ``update_feeds(scheduled=False, workers=W)`` for
  W = 1, 4 and 8, each on a fresh database, both passes, each pass a
  subprocess (as ours); the best W per pass is the peer, all are reported;
* **floor**: a plain ``httpx.AsyncClient`` fetching every feed with the same
  global concurrency as ours (``fetch.max_connections``) and conditional GETs
  in the second pass: the network floor, no parsing, no storing;
  then the same client holding at most ``PER_HOST`` requests per host at once
  (ours' default ``fetch.max_per_host``, 2): the floor of a client as polite
  as ours, where a slow feed also holds back its host's other feeds;
* **daemon**: ``aggregator run`` on the same corpus and a fresh data folder,
  ``/healthz`` polled every ~20 ms during the first ingest (slowest answer,
  answers over 100 ms) and the time until every feed was attempted (the
  ``sources`` rows with a ``last_attempt_at``, read from the SQLite file);
  with ``--loop-trace FILE``, every event-loop callback of the daemon that
  held its loop over 15 ms is written to FILE, with a profile during its first
  30 s (``benchmarks/looptrace/sitecustomize.py``): what a slow answer waited for.

Each figure is for the whole process tree of the command: wall time; CPU =
user + sys, the larger of ``wait4``'s (the process and every descendant it
waited for) and the sum of each process's own time last seen in the tree
(``/proc/PID/stat``, every 50 ms: multiprocessing's fork server and its
workers are never waited for, so ``wait4`` misses them; user and sys are
``wait4``'s);
peak memory = the largest sum, over the tree, of PSS (proportional set size:
pages shared between a parent and its forked workers counted once), sampled
from ``/proc/PID/smaps_rollup`` every 50 ms; the RSS sum is reported beside
it. Entries/s = entries stored / wall (the floor: entries served / wall).

Every client is given a 10 s timeout; the never-answering feeds are held 12 s.
Entries: stored by the pass (new rows), so a 304 pass stores none.
Everything binds 127.0.0.x; the server stops when the run ends (and by itself
after 4 hours).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import ingest_corpus  # noqa: E402
from ingest_server import FeedServer  # noqa: E402
from installed import byte_compile  # noqa: E402

#: every client's timeout; the never-answering feeds are held longer (HANG)
TIMEOUT = 10.0
HANG = 12.0
#: ours' global connection limit, written into the generated config; the floor uses it too
CONCURRENCY = 20
#: ours' ``fetch.max_per_host`` (``--per-host``); 0 keeps the default (2)
PER_HOST_OURS = 0
#: ours' ``ingest.workers`` (``--ingest-workers``); None leaves the default
INGEST_WORKERS: int | None = None
#: where the daemon's slow event-loop callbacks are written (``--loop-trace``); None: not traced
LOOP_TRACE: Path | None = None
READER_WORKERS = (1, 4, 8)
TOPICS = """\
topics:
  - name: caucasus
    query: '(Nagorno-Karabakh OR Azerbaijan OR Armenia OR Georgia OR Caucasus) AND NOT tag:sport'
  - name: iran
    query: 'Iran OR Tehran OR JCPOA'
  - name: climate
    query: 'climate OR emissions OR "renewable energy" OR drought OR glacier*'
  - name: technology
    query: 'technology OR software OR "open source" OR startup OR semiconductor*'
"""


# --- measuring a process tree ------------------------------------------------------


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_table() -> tuple[dict[int, list[int]], dict[int, float]]:
    """Each process's children, and its own CPU seconds (user + sys, not its children's)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return children, cpu


def tree_memory(root: int) -> tuple[float, float, int, dict[int, float]]:
    """(PSS MiB, RSS MiB, process count, {pid: own CPU s}) over ``root`` and its descendants."""
    pss, rss, seen, _, _ = _tree_memory(root)
    return pss, rss, len(seen), {pid: cpu for pid, cpu in seen.items() if cpu is not None}


def _tree_memory(
    root: int,
) -> tuple[float, float, dict[int, float | None], dict[int, float], dict[int, int]]:
    """PSS and RSS (MiB) of the tree, {pid: own CPU s} and {pid: PSS MiB} of its processes,
    {pid: parent pid}."""
    children, cpu = _process_table()
    parents = {child: parent for parent, kids in children.items() for child in kids}
    todo, pss, rss = [root], 0, 0
    seen: dict[int, float | None] = {}
    own: dict[int, float] = {}
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        mine = 0
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        mine = int(line.split()[1])
                    elif line.startswith(b"Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
        pss += mine
        own[pid] = mine / 1024
        seen[pid] = cpu.get(pid)
    return pss / 1024, rss / 1024, seen, own, parents


def _role(pid: int, root: int, parents: dict[int, int]) -> str:
    """What a process of the measured tree is: its command line, and its parent's."""
    if pid == root:
        return "main"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    if b"resource_tracker" in argv:
        return "resource tracker"
    # a worker forked by the fork server carries the server's command line
    if b"forkserver" in argv and parents.get(pid) == root:
        return "fork server"
    return "worker"


class _Sampler(threading.Thread):
    """Peak memory of a process tree, and the last CPU time seen of each of its processes.

    The CPU sum matters where ``wait4`` falls short: multiprocessing's fork
    server and the workers it forks are never waited for by the measured
    process, so their CPU never reaches its rusage. Each process's last
    sample is at most one interval old when it exits.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_pss = self.peak_rss = 0.0
        self.peak_procs = 0
        self.cpu: dict[int, float] = {}
        #: each process's PSS (MiB) at the tree's peak, by what it is
        self.at_peak: dict[str, list[float]] = {}
        #: the wall-clock time of the peak (UTC), to find it in the daemon's log
        self.peak_at = ""
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pss, rss, seen, own, parents = _tree_memory(self.pid)
            if pss > self.peak_pss:
                self.peak_pss = pss
                self.peak_at = time.strftime("%H:%M:%S", time.gmtime())
                self.at_peak = {}
                for pid, mib in sorted(own.items()):
                    role = _role(pid, self.pid, parents)
                    self.at_peak.setdefault(role, []).append(round(mib, 1))
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, len(seen))
            self.cpu.update({pid: cpu for pid, cpu in seen.items() if cpu is not None})
            self.done.wait(self.interval)

    def tree_cpu(self) -> float:
        """CPU seconds summed over every process seen in the tree."""
        return sum(self.cpu.values())


@dataclass
class Run:
    """One measured command."""

    label: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    peak_pss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    peak_processes: int = 0
    entries: int = 0
    entries_per_s: float = 0.0
    returncode: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


#: the checkout whose ``aggregator`` package "ours" runs (``--checkout``)
CHECKOUT = REPO


def _ours_env() -> dict[str, str]:
    # ``python -m aggregator`` from CHECKOUT imports that checkout's package
    return {**os.environ, "PYTHONPATH": str(CHECKOUT)}


def measure(label: str, argv: list[str], out: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to completion, stdout to ``out``, and measure its process tree."""
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=CHECKOUT)
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    waited = usage.ru_utime + usage.ru_stime
    return Run(
        label=label,
        wall_s=wall,
        cpu_s=max(waited, sampler.tree_cpu()),
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_pss_mib=sampler.peak_pss,
        peak_rss_mib=sampler.peak_rss,
        peak_processes=sampler.peak_procs,
        returncode=proc.returncode,
        extra={
            "cpu_waited_s": round(waited, 2),
            "cpu_tree_s": round(sampler.tree_cpu(), 2),
            "pss_at_peak_mib": sampler.at_peak,
            "peak_at": sampler.peak_at,
        },
    )


def _with_rate(run: Run, entries: int) -> Run:
    run.entries = entries
    run.entries_per_s = entries / run.wall_s if run.wall_s else 0.0
    return run


# --- the three clients ---------------------------------------------------------------


def write_config(folder: Path, urls: list[str], port: int) -> Path:
    """An aggregator config polling every URL, its data in ``folder / "var"``."""
    lines = [
        f"data_dir: {json.dumps(str(folder / 'var'))}",
        f"server: {{host: 127.0.0.1, port: {port}}}",
        # loopback sources are refused unless allowed (127.0.0.1/32 and the other 127.0.0.x)
        "allow_networks: ['127.0.0.0/8']",
        f"defaults: {{timeout: {TIMEOUT:g}s}}",
        (
            f"fetch: {{max_connections: {CONCURRENCY}, max_per_host: {PER_HOST_OURS}}}"
            if PER_HOST_OURS
            else f"fetch: {{max_connections: {CONCURRENCY}}}"
        ),
    ]
    if INGEST_WORKERS is not None:
        lines.append(f"ingest: {{workers: {INGEST_WORKERS}}}")
    lines.append("sources:")
    lines += [f"  - {{name: f{i:06d}, url: {json.dumps(url)}}}" for i, url in enumerate(urls)]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n" + TOPICS, encoding="utf-8")
    return path


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        value: int = conn.execute(sql).fetchone()[0]
        return value


def run_ours(work: Path, urls: list[str], expected: int) -> list[Run]:
    folder = work / "ours"
    folder.mkdir()
    config = write_config(folder, urls, free_port())
    argv = [sys.executable, "-m", "aggregator", "--config", str(config), "update", "--json"]
    runs, before = [], 0
    db = folder / "var" / "aggregator.db"
    for label in ("first pass", "304 pass"):
        out = folder / f"{label.split()[0]}.json"
        run = measure(f"ours {label}", argv, out, env=_ours_env())
        try:
            outcomes = Counter(r["outcome"] for r in json.loads(out.read_text()))
        except (OSError, ValueError):
            raise SystemExit(f"ours {label} failed: see {out.with_suffix('.err')}") from None
        run.extra["outcomes"] = dict(outcomes)
        stored = _count(db, "SELECT count(*) FROM entries")
        runs.append(_with_rate(run, stored - before))
        before = stored
        print(f"  {run.label}: {run.wall_s:.1f} s, {dict(outcomes)}", file=sys.stderr)
    if runs[0].entries != expected:
        print(f"  note: ours stored {runs[0].entries} of {expected} entries", file=sys.stderr)
    return runs


def run_reader(work: Path, urls: list[str], settings: list[int]) -> list[Run]:
    runs = []
    for workers in settings:
        folder = work / f"reader-{workers}"
        folder.mkdir()
        before = 0
        for label in ("first pass", "304 pass"):
            out = folder / f"{label.split()[0]}.json"
            argv = [sys.executable, __file__, "--_child", "reader", str(folder), str(workers)]
            run = measure(f"reader w{workers} {label}", argv, out)
            try:
                result = json.loads(out.read_text())
            except (OSError, ValueError):
                raise SystemExit(f"{run.label} failed: see {out.with_suffix('.err')}") from None
            run.extra.update(workers=workers, feeds_with_errors=result["errors"])
            runs.append(_with_rate(run, result["entries"] - before))
            before = result["entries"]
            print(f"  {run.label}: {run.wall_s:.1f} s", file=sys.stderr)
    return runs


#: ours' default ``fetch.max_per_host``: the polite floor keeps to it too
PER_HOST = 2


def run_floor(
    work: Path, urls: list[str], served_entries: int, per_host: int | None = None
) -> list[Run]:
    """The plain client; with ``per_host``, also at most that many requests per host at once."""
    name = "floor" if per_host is None else f"floor {per_host}/host"
    folder = work / name.replace(" ", "-").replace("/", "-")
    folder.mkdir()
    runs = []
    for label in ("first pass", "304 pass"):
        out = folder / f"{label.split()[0]}.json"
        argv = [sys.executable, __file__, "--_child", "floor", str(folder), str(per_host or 0)]
        run = measure(f"{name} {label}", argv, out)
        run.extra["statuses"] = json.loads(out.read_text())
        runs.append(_with_rate(run, served_entries if label == "first pass" else 0))
        print(f"  {run.label}: {run.wall_s:.1f} s, {run.extra['statuses']}", file=sys.stderr)
    return runs


# --- the daemon phase -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_POLL = r"""
import http.client, json, sys, threading, time
port, every = int(sys.argv[1]), float(sys.argv[2])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
latencies, slow, errors, first = [], [], 0, None
while not done.is_set():
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    except OSError:
        if first is not None:
            errors += 1
    else:
        if first is None:
            first = time.time()
        took = time.perf_counter() - started
        latencies.append(took)
        if took > 0.05:
            slow.append((time.strftime("%H:%M:%S"), round(took, 3), len(latencies)))
    finally:
        conn.close()
    done.wait(max(0.0, started + every - time.perf_counter()))
json.dump({"latencies": latencies, "slow": slow, "errors": errors, "first": first}, sys.stdout)
"""


class _HealthPoller:
    """GET /healthz every ~20 ms from a process of its own; latencies from the first answer on.

    Its own process: a thread here would share this process's interpreter with
    the feed server's threads, and its latencies would include their turns.
    """

    def __init__(self, port: int, every: float = 0.02) -> None:
        self.port, self.every = port, every
        self.latencies: list[float] = []
        #: (wall-clock time, seconds, its rank: 1 is the first answer) of every answer
        #: slower than 50 ms, to find in the log
        self.slow: list[tuple[str, float, int]] = []
        self.errors = 0
        self.first_answer: float | None = None
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-c", _POLL, str(self.port), str(self.every)]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def join(self) -> None:
        """Stop the poller and read what it measured."""
        assert self._proc is not None
        out, _ = self._proc.communicate("", timeout=180)
        found = json.loads(out)
        self.latencies = found["latencies"]
        self.slow = [tuple(x) for x in found["slow"]]
        self.errors = found["errors"]
        if found["first"] is not None:
            self.first_answer = time.perf_counter() - (time.time() - found["first"])


def _reap(pid: int, grace: float) -> tuple[int, Any]:
    """Wait for ``pid`` (SIGKILL after ``grace`` seconds); its status and rusage."""
    end = time.monotonic() + grace
    try:
        while time.monotonic() < end:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                return status, usage
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        return status, usage
    except ChildProcessError:
        return 0, None


def _publish_pending(port: int) -> bool:
    """Whether the daemon says stored changes are not published yet (``/healthz``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return bool(json.loads(answer.read()).get("publish_pending", False))
    except (OSError, ValueError):
        return True


def _at_rest(pid: int, port: int, deadline: float) -> float:
    """The tree's PSS (MiB) once it is at rest: everything published, its workers stopped.

    Waits (at most ``deadline`` seconds) until the daemon has published what
    it stored (``/healthz``: a publish after a long one waits four times its
    length) and is a single process (``ingest.idle_after`` stops the parse
    workers and the fork server), then takes the median of ten samples a
    second apart. Says so when the deadline passed first: the figure is then
    not at rest.
    """
    started = time.perf_counter()
    while True:
        _, _, count, _ = tree_memory(pid)
        if count <= 1 and not _publish_pending(port):
            break
        if time.perf_counter() - started >= deadline:
            print(f"  daemon: still {count} processes after {deadline:.0f} s", file=sys.stderr)
            break
        time.sleep(0.5)
    samples = []
    for _ in range(10):
        samples.append(tree_memory(pid)[0])
        time.sleep(1.0)
    return statistics.median(samples)


def run_daemon(work: Path, urls: list[str], deadline: float) -> Run:
    folder = work / "daemon"
    folder.mkdir()
    port = free_port()
    config = write_config(folder, urls, port)
    db = folder / "var" / "aggregator.db"
    argv = [sys.executable, "-m", "aggregator", "--config", str(config), "run"]
    log = (folder / "daemon.log").open("wb")
    env = _ours_env()
    if LOOP_TRACE is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(HERE / "looptrace"), env["PYTHONPATH"]])
        env["AGGREGATOR_BENCH_LOOP_TRACE"] = str(LOOP_TRACE)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=CHECKOUT, env=env)
    sampler, poller = _Sampler(proc.pid), _HealthPoller(port)
    sampler.start()
    poller.start()
    attempted, ingest_s = 0, None
    try:
        while time.perf_counter() - started < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                attempted = _count(
                    db, "SELECT count(*) FROM sources WHERE last_attempt_at IS NOT NULL"
                )
            except sqlite3.Error:
                continue  # not created yet, or busy
            if attempted >= len(urls):
                ingest_s = time.perf_counter() - started
                break
        ingest_peak, ingest_at_peak = sampler.peak_pss, sampler.at_peak
        ingest_peak_at = sampler.peak_at
        # At rest once the ingest's publishes are done and the workers stopped
        # idle: on this corpus the first big publish alone takes up to 2 minutes.
        rest_pss = _at_rest(proc.pid, port, deadline=900.0)
    finally:
        poller.join()
        entries = _count(db, "SELECT count(*) FROM entries") if db.exists() else 0
        proc.send_signal(signal.SIGTERM)
        status, usage = _reap(proc.pid, grace=60.0)
        sampler.done.set()
        sampler.join()
        log.close()
    if proc.returncode is None:
        proc.returncode = os.waitstatus_to_exitcode(status)
    lat = sorted(poller.latencies)
    run = Run(
        label="daemon first ingest",
        wall_s=ingest_s if ingest_s is not None else float("nan"),
        cpu_s=max((usage.ru_utime + usage.ru_stime) if usage else 0.0, sampler.tree_cpu()),
        user_s=usage.ru_utime if usage else float("nan"),
        sys_s=usage.ru_stime if usage else float("nan"),
        peak_pss_mib=sampler.peak_pss,
        peak_rss_mib=sampler.peak_rss,
        peak_processes=sampler.peak_procs,
        returncode=proc.returncode,
        extra={
            "attempted": attempted,
            "healthz_answers": len(lat),
            "healthz_errors": poller.errors,
            "healthz_max_ms": lat[-1] * 1000 if lat else float("nan"),
            "healthz_p50_ms": lat[len(lat) // 2] * 1000 if lat else float("nan"),
            "healthz_p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan"),
            "healthz_over_100ms": sum(1 for x in lat if x > 0.1),
            "healthz_over_50ms_at": poller.slow,
            "first_healthz_s": (poller.first_answer - started) if poller.first_answer else None,
            "ingest_peak_pss_mib": round(ingest_peak, 1),
            "pss_at_peak_mib": ingest_at_peak,
            "peak_at": ingest_peak_at,
            "rest_pss_mib": round(rest_pss, 1),
            "peak_over_rest": round(ingest_peak / rest_pss, 2) if rest_pss else None,
            "note": "wall = time until every feed was attempted; CPU includes shutdown",
        },
    )
    _with_rate(run, entries)
    if ingest_s is None:
        print(
            f"  daemon: only {attempted} of {len(urls)} feeds attempted in {deadline:.0f} s"
            f" (see {folder / 'daemon.log'})",
            file=sys.stderr,
        )
    print(f"  daemon: {run.wall_s:.1f} s, {run.extra}", file=sys.stderr)
    return run


# --- children (run in their own process, measured from outside) ----------------------


def _reader_child(folder: Path, workers: int) -> None:
    from reader import make_reader

    urls = json.loads((folder.parent / "urls.json").read_text())
    reader = make_reader(str(folder / "reader.sqlite"), session_timeout=(TIMEOUT, TIMEOUT))
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    reader.update_feeds(scheduled=False, workers=workers)
    errors = sum(1 for feed in reader.get_feeds() if feed.last_exception)
    print(json.dumps({"entries": reader.get_entry_counts().total, "errors": errors}))
    reader.close()


def _floor_child(folder: Path, per_host: int) -> None:
    import asyncio
    from urllib.parse import urlsplit

    import httpx

    urls = json.loads((folder.parent / "urls.json").read_text())
    state_file = folder / "validators.json"
    validators: dict[str, dict[str, str]] = (
        json.loads(state_file.read_text()) if state_file.exists() else {}
    )

    async def main() -> Counter[str]:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        # in front of the pool: httpcore's queue scan is slow with 1,000 waiters
        gate = asyncio.Semaphore(CONCURRENCY)
        hosts: dict[str, asyncio.Semaphore] = {}
        statuses: Counter[str] = Counter()
        async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT) as client:

            async def one(url: str) -> None:
                headers = {}
                seen = validators.get(url, {})
                if "etag" in seen:
                    headers["If-None-Match"] = seen["etag"]
                if "last-modified" in seen:
                    headers["If-Modified-Since"] = seen["last-modified"]
                host = urlsplit(url).netloc
                polite = hosts.setdefault(host, asyncio.Semaphore(per_host or CONCURRENCY))
                async with polite, gate:
                    try:
                        reply = await asyncio.wait_for(client.get(url, headers=headers), TIMEOUT)
                    except (httpx.HTTPError, TimeoutError):
                        statuses["error"] += 1
                        return
                statuses[str(reply.status_code)] += 1
                if reply.status_code == 200:
                    validators[url] = {
                        k: reply.headers[k] for k in ("etag", "last-modified") if k in reply.headers
                    }

            await asyncio.gather(*(one(url) for url in urls))
        return statuses

    statuses = asyncio.run(main())
    state_file.write_text(json.dumps(validators))
    print(json.dumps(dict(statuses)))


# --- report ---------------------------------------------------------------------------------


def _best(runs: list[Run], label: str) -> Run | None:
    candidates = [r for r in runs if r.label.endswith(label)]
    return min(candidates, key=lambda r: r.wall_s) if candidates else None


def report(results: dict[str, Any]) -> None:
    runs = [Run(**r) for r in results["runs"]]
    print(
        f"\n{results['feeds']} feeds (seed {results['seed']}), {results['entries_served']} entries "
        f"served by {results['feeds_ok']} answering feeds, {results['corpus_mib']:.0f} MiB; "
        f"memory = peak PSS summed over the process tree"
    )
    cols = ("wall s", "CPU s", "user s", "sys s", "entries", "entries/s", "PSS MiB", "RSS MiB")
    print(f"{'run':28}" + "".join(f"{c:>11}" for c in cols))
    for r in runs:
        values = (r.wall_s, r.cpu_s, r.user_s, r.sys_s)
        print(
            f"{r.label:28}"
            + "".join(f"{v:11.2f}" for v in values)
            + f"{r.entries:11d}{r.entries_per_s:11.0f}{r.peak_pss_mib:11.0f}{r.peak_rss_mib:11.0f}"
        )
    for r in runs:
        if r.label.startswith("daemon"):
            e = r.extra
            print(
                f"daemon: every feed attempted after {r.wall_s:.1f} s; /healthz answered "
                f"{e['healthz_answers']} times, slowest {e['healthz_max_ms']:.0f} ms, "
                f"p50 {e['healthz_p50_ms']:.0f} ms, p99 {e['healthz_p99_ms']:.0f} ms, "
                f"{e['healthz_over_100ms']} over 100 ms, "
                f"{e['healthz_errors']} errors"
            )
    print(
        "\neach process's PSS (MiB) at its run's peak (the daemon's: during the ingest),"
        " and when (UTC)"
    )
    for r in runs:
        parts = r.extra.get("pss_at_peak_mib")
        if parts:
            shares = "; ".join(f"{k} {v}" for k, v in sorted(parts.items()))
            print(f"  {r.label:26} {shares} at {r.extra.get('peak_at', '?')}")
    print()
    for name, value in results["ratios"].items():
        print(f"ratio {name}: {value:.2f}")


def ratios(runs: list[Run]) -> dict[str, float]:
    out: dict[str, float] = {}
    ours1, ours2 = _best(runs, "ours first pass"), _best(runs, "ours 304 pass")
    reader1 = _best([r for r in runs if r.label.startswith("reader")], "first pass")
    reader2 = _best([r for r in runs if r.label.startswith("reader")], "304 pass")
    floor2 = _best(runs, "floor 304 pass")
    if ours1 and reader1:
        out[f"ours/reader first pass (reader w{reader1.extra['workers']})"] = (
            ours1.wall_s / reader1.wall_s
        )
        out["ours/reader first pass CPU"] = ours1.cpu_s / reader1.cpu_s
        # per entry: a pass that drops feeds (timeouts) is quicker but did less
        if ours1.entries and reader1.entries:
            out["ours/reader first pass CPU per entry"] = (ours1.cpu_s / ours1.entries) / (
                reader1.cpu_s / reader1.entries
            )
            out["reader/ours first pass entries/s"] = reader1.entries_per_s / ours1.entries_per_s
        out["ours/reader peak PSS, first pass"] = ours1.peak_pss_mib / reader1.peak_pss_mib
    if ours2 and reader2:
        out[f"ours/reader 304 pass (reader w{reader2.extra['workers']})"] = (
            ours2.wall_s / reader2.wall_s
        )
    if ours2 and floor2:
        out["ours/floor 304 pass"] = ours2.wall_s / floor2.wall_s
    polite2 = _best(runs, f"floor {PER_HOST}/host 304 pass")
    if ours2 and polite2:
        out[f"ours/floor {PER_HOST}/host 304 pass (the same per-host limit)"] = (
            ours2.wall_s / polite2.wall_s
        )
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--_child":
        if sys.argv[2] == "reader":
            _reader_child(Path(sys.argv[3]), int(sys.argv[4]))
        else:
            _floor_child(Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000, help="feeds in the corpus")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument(
        "--only", choices=("ours", "reader", "floor", "daemon"), action="append", help="repeatable"
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=0,
        help=(
            "ours' fetch.max_per_host; with --hosts 1 and --reader-workers W, --per-host W "
            "compares ours and reader at the same concurrency"
        ),
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        help="ours' ingest.workers (0 = the CPU stage in threads) [default: the config's default]",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--hosts", type=int, default=10, help="loopback addresses to serve on")
    parser.add_argument(
        "--hang-share",
        type=float,
        default=ingest_corpus.HANG_SHARE,
        help="share of feeds that never answer (each holds every pass at the 10 s timeout; "
        "0 measures the passes without that floor)",
    )
    parser.add_argument(
        "--daemon-deadline",
        type=float,
        help="seconds the daemon phase waits for every feed [default: max(600, 2 x feeds)]",
    )
    parser.add_argument(
        "--reader-workers",
        type=int,
        nargs="+",
        default=list(READER_WORKERS),
        help="reader's worker settings to try (its best is the peer)",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        default=REPO,
        help="source tree whose aggregator package 'ours' runs (e.g. a baseline: "
        "git archive REV | tar -x -C DIR); default: this one",
    )
    parser.add_argument(
        "--loop-trace",
        type=Path,
        help="write the daemon's event-loop callbacks over 15 ms here, profiled in its first 30 s",
    )
    args = parser.parse_args()
    global CHECKOUT, PER_HOST_OURS, INGEST_WORKERS, LOOP_TRACE
    LOOP_TRACE = args.loop_trace.resolve() if args.loop_trace else None
    CHECKOUT = args.checkout.resolve()
    byte_compile(CHECKOUT)
    PER_HOST_OURS = args.per_host
    INGEST_WORKERS = args.ingest_workers
    parts = args.only or ["ours", "reader", "floor", "daemon"]

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="bench_ingest-"))
    try:
        started = time.perf_counter()
        ingest_corpus.HANG_SHARE = args.hang_share
        feeds = ingest_corpus.generate(work / "corpus", args.feeds, args.seed)
        print(
            f"corpus: {args.feeds} feeds in {time.perf_counter() - started:.1f} s", file=sys.stderr
        )
        answering = [f for f in feeds if f.behaviour in ("ok", "slow")]
        served = sum(f.entries for f in answering)
        results: dict[str, Any] = {
            "feeds": args.feeds,
            "checkout": str(CHECKOUT),
            "seed": args.seed,
            "entries_total": sum(f.entries for f in feeds),
            "entries_served": served,
            "feeds_ok": len(answering),
            "behaviours": dict(Counter(f.behaviour for f in feeds)),
            "formats": dict(Counter(f.format for f in feeds)),
            "corpus_mib": sum(f.size for f in feeds) / 2**20,
            "memory": "peak PSS (and RSS) summed over the process tree, polled every 50 ms",
            "cpu": (
                "user+sys: the larger of wait4 (the process and its waited-for descendants) and"
                " the sum over every process seen in the tree (/proc, every 50 ms)"
            ),
        }
        runs: list[Run] = []
        with FeedServer(work / "corpus", hosts=args.hosts, hang=HANG) as server:
            (work / "urls.json").write_text(json.dumps(server.urls))
            results["hosts"] = len(server.addresses)
            for part in parts:
                server.reset()
                if part == "ours":
                    runs += run_ours(work, server.urls, served)
                elif part == "reader":
                    runs += run_reader(work, server.urls, args.reader_workers)
                elif part == "floor":
                    runs += run_floor(work, server.urls, served)
                    server.reset()
                    runs += run_floor(work, server.urls, served, per_host=PER_HOST)
                else:
                    deadline = args.daemon_deadline or max(600.0, 2.0 * args.feeds)
                    runs.append(run_daemon(work, server.urls, deadline=deadline))
        results["runs"] = [asdict(r) for r in runs]
        results["ratios"] = ratios(runs)
        report(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
