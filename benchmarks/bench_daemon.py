"""Daemon cost with many configured sources: memory (RSS) and dispatch-tick time.

For each size (10,000 and 100,000 sources, all pointing at a local server
that is never contacted), a fresh subprocess loads a generated config, opens
the store (syncing every source into it), builds the daemon and publishes
once, then times the dispatch tick two ways:

* steady state: nothing due (every source polled recently, next_due_at in the
  future), which is what almost every tick of a running daemon sees;
* backlog: every source due at once (first start) with every worker busy, so
  the tick only selects and queues (the fetches themselves are bounded by the
  worker and connection limits, not by the tick).

With ``--rest`` (``--rest --semantic``: with ``dedup: {semantic: true}``), instead:
``aggregator run`` on a copy of the default config (``config/aggregator.yaml`` and ``seeds/``)
in a fresh data folder; the tree's PSS is sampled every 50 ms from start-up until the
daemon is at rest (the seeds published and the parse workers stopped for being idle, after
``ingest.idle_after``, 1 min by default), then ten times a second apart: the peak during
start-up and the median at rest are printed.

Run: ``python benchmarks/bench_daemon.py [N ...]`` or
``python benchmarks/bench_daemon.py --rest [--semantic]``
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed import byte_compile  # noqa: E402
from proctree import tree_pss  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_config(folder: Path, n: int) -> Path:
    lines = [
        "data_dir: var",
        "server: {host: 127.0.0.1, port: 1}",
        "allow_networks: ['127.0.0.0/8']",
        "sources:",
    ]
    for i in range(n):
        lines.append(f"  - {{name: s{i:06d}, url: 'http://127.0.0.1:9/{i % 97}/feed{i}.xml'}}")
    lines += ["topics:", "  - {name: all, query: the}", "  - {name: talks, query: talks}"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure(n: int) -> dict[str, float]:
    from aggregator.config import load_config
    from aggregator.daemon import Daemon, DaemonSettings

    base_rss = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        config = load_config(write_config(folder, n))
        t_config = time.perf_counter() - t0

        async def main() -> dict[str, float]:
            daemon = Daemon(config, DaemonSettings(max_workers=1, watch=False))
            t1 = time.perf_counter()
            await daemon.open()
            t_open = time.perf_counter() - t1
            await daemon.republisher.publish(full=True)
            store = daemon.ctx.store
            dispatcher = daemon.dispatcher
            # Every worker busy: the tick claims nothing and counts the backlog.
            dispatcher._in_flight = {"busy": asyncio.get_running_loop().create_future()}  # type: ignore[dict-item]
            now = datetime.now(UTC)
            with store.engine.begin() as conn:
                from aggregator.store.schema import sources

                conn.execute(sources.update().values(next_due_at=now - timedelta(minutes=1)))
            backlog = []
            for _ in range(5):
                t = time.perf_counter()
                waiting = await dispatcher.tick()
                backlog.append(time.perf_counter() - t)
            assert waiting == n, (waiting, n)
            # Steady state: every source polled, next due within the hour.
            with store.engine.begin() as conn:
                conn.execute(sources.update().values(next_due_at=now + timedelta(hours=1)))
            dispatcher._in_flight = {}
            steady = []
            for _ in range(20):
                t = time.perf_counter()
                await dispatcher.tick()
                steady.append(time.perf_counter() - t)
            # A reload with the same config: what SIGHUP costs.
            t2 = time.perf_counter()
            await daemon.reload()
            t_reload = time.perf_counter() - t2
            await daemon.close()
            return {
                "open_s": t_open,
                "backlog_tick_ms": statistics.median(backlog) * 1000,
                "steady_tick_ms": statistics.median(steady) * 1000,
                "reload_s": t_reload,
            }

        result = asyncio.run(main())
    return {
        "sources": n,
        "config_s": t_config,
        **result,
        "rss_mib": rss_mib(),
        "base_rss_mib": base_rss,
    }


def rest(*, semantic: bool = False) -> None:
    import shutil
    import socket
    import urllib.request

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(REPO / "seeds", folder / "seeds")
        (folder / "config").mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        text = (REPO / "config" / "aggregator.yaml").read_text(encoding="utf-8")
        text = text.replace("port: 8080", f"port: {port}").replace("8080", str(port))
        if semantic:
            text += "\ndedup: {semantic: true}\n"
        config = folder / "config" / "aggregator.yaml"
        config.write_text(text, encoding="utf-8")
        argv = [sys.executable, "-m", "aggregator", "--config", str(config), "run"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        peak, published = 0.0, None
        feed = folder / "var" / "public" / "topics" / "caucasus.atom"
        try:
            while time.perf_counter() - started < 300:
                pss, count = tree_pss(proc.pid)
                peak = max(peak, pss)
                if published is None and feed.exists():
                    published = time.perf_counter() - started
                if published is not None and count <= 1:
                    break
                time.sleep(0.05)
            at_rest = time.perf_counter() - started
            samples = []
            for _ in range(10):
                samples.append(tree_pss(proc.pid)[0])
                time.sleep(1.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/topics/caucasus.atom") as r:
                served = len(r.read())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    print(f"default config: published after {published:.1f}s, at rest after {at_rest:.0f}s")
    print(f"tree PSS peak during start-up  {peak:7.1f} MiB")
    print(f"tree PSS at rest (median of 10) {statistics.median(samples):7.1f} MiB")
    print(f"(served caucasus.atom: {served} bytes)")


def main() -> None:
    byte_compile(REPO)
    if sys.argv[1:2] == ["--rest"]:
        rest(semantic="--semantic" in sys.argv[2:])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    rows = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cols = [
        "sources",
        "rss_mib",
        "config_s",
        "open_s",
        "steady_tick_ms",
        "backlog_tick_ms",
        "reload_s",
    ]
    print(" ".join(f"{c:>16}" for c in cols))
    for r in rows:
        print(
            " ".join(f"{r[c]:>16.2f}" if isinstance(r[c], float) else f"{r[c]:>16}" for c in cols)
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(
            f"\ngrowth {b['sources']}/{a['sources']} = {b['sources'] / a['sources']:.0f}x sources:"
        )
        for c in cols[1:]:
            print(f"  {c:<16} x{b[c] / a[c]:.1f}")


if __name__ == "__main__":
    main()
