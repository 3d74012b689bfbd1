"""Publish the test corpora and print a digest of every published byte; compare two revisions.

A refactor must not change what subscribers read. This script runs one
update and one publish over fixed inputs at a fixed time: the seed
fixtures, the labelled story set (its feeds served over loopback, its seed
files read from a folder) and feedparser's corpus as seed files. It prints
one line per published file, ``sha256  path``.

``--against REV`` also runs the same script over ``git archive REV`` (the
code of that revision, this script's inputs) and exits 1 when any published
file differs::

    python benchmarks/published_bytes.py --against main
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
CORPUS = REPO.parent / "shared" / "corpus" / "feedparser"
#: the export's manifest records each file's inode and mtime: left out, its
#: headers (ETag, Last-Modified) are those of the files compared
MANIFEST = ".aggregator-manifest.json"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _corpus_folders() -> list[Path]:
    """feedparser's corpus in folders of at most one seed batch each.

    A seed folder's batches are committed as each is parsed: with one batch per
    folder, and one source updated at a time, the stories are created in the
    same order on every run, and so are the published pages.
    """
    if not CORPUS.is_dir():
        return []
    folders = [p for p in sorted(CORPUS.iterdir()) if p.is_dir() and p.name != "wellformed"]
    folders += [p for p in sorted((CORPUS / "wellformed").iterdir()) if p.is_dir()]
    return [f for f in folders if sum(1 for p in f.rglob("*") if p.is_file()) <= 200]


def _config(work: Path, feeds_url: str) -> Path:
    seeds = work / "seeds"
    seeds.mkdir()
    for path in sorted((DATA / "seeds").iterdir()):
        if not path.name.endswith(".json"):
            shutil.copy2(path, seeds / path.name)
    feeds = sorted(p.name for p in (DATA / "stories" / "feeds").iterdir())
    remote = "\n".join(f"  - {{name: {Path(n).stem}, url: '{feeds_url}{n}'}}" for n in feeds)
    corpus = "\n".join(
        f"  - {{name: corpus-{folder.name}, path: '{folder}'}}" for folder in _corpus_folders()
    )
    text = f"""
data_dir: {work / "var"}
allow_networks: [127.0.0.0/8]
server: {{base_url: 'http://news.example/'}}
sources:
  - {{name: seeds, path: '{seeds}'}}
  - {{name: story-seeds, path: '{DATA / "stories" / "seeds"}'}}
{remote}
{corpus}
topics:
  - {{name: everything, title: All, query: 'a OR the OR of OR and OR to OR in OR is OR test'}}
  - {{name: small, title: Small pages, query: 'the OR test', max_items: 7}}
  - {{name: karabakh, title: Karabakh, query: Nagorno-Karabakh}}
  - {{name: strikes, title: Strikes, query: 'strike* OR Rotterdam'}}
"""
    path = work / "aggregator.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def _update_in_order(ctx: Any) -> list[Any]:
    from aggregator import update_source

    # One at a time, in config order: stories are created in the same order every run.
    return [await update_source(spec, ctx) for spec in ctx.config.sources]


def digest(work: Path) -> dict[str, str]:
    """Update and publish the corpora under ``work``; published path -> sha256."""
    import aggregator
    from aggregator import open_context, publish_static
    from aggregator.config import load_config

    print(f"code: {Path(aggregator.__file__).parent}", file=sys.stderr)
    handler = partial(_Quiet, directory=str(DATA / "stories" / "feeds"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        ctx = open_context(load_config(_config(work, url)), clock=lambda: NOW)
        try:
            results = asyncio.run(_update_in_order(ctx))
            new = sum(r.new for r in results)
            print(f"{len(results)} sources, {new} new entries", file=sys.stderr)
            for r in results:
                if r.error:
                    print(r.error, file=sys.stderr)
            out = work / "public"
            publish_static(ctx, out)
        finally:
            ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _other(rev: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "aggregator"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": str(code)}
        out = subprocess.run(
            [sys.executable, __file__],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=tmp,
        )
    return dict(reversed(line.split("  ", 1)) for line in out.stdout.splitlines())  # type: ignore[misc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--against", metavar="REV", help="compare with this git revision's code")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = digest(Path(tmp))
    if args.against is None:
        for path, sha in ours.items():
            print(f"{sha}  {path}")
        return 0
    theirs = _other(args.against)
    differ = sorted(p for p in ours.keys() | theirs.keys() if ours.get(p) != theirs.get(p))
    for path in differ:
        print(f"differs: {path}")
    print(f"{len(ours)} files here, {len(theirs)} at {args.against}, {len(differ)} differ")
    return 1 if differ or not ours else 0


if __name__ == "__main__":
    sys.exit(main())
