"""Headless Chromium driven over the DevTools protocol: load a page, read its console and DOM.

``--dump-dom`` shows the DOM but not the console; this client opens one page
target, records console errors, uncaught exceptions and log-domain errors
(failed loads, CSP violations), and evaluates expressions in the page.
Everything runs on loopback and each wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

#: flags every headless run takes: no sandbox (root in CI), no network chatter, no first-run UI
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-breakpad",
    "--disable-crash-reporter",
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


@dataclass
class Page:
    """One page target; ``errors`` collects every console error it produced."""

    ws: Any
    errors: list[str] = field(default_factory=list)
    _next: int = 0
    _events: list[dict[str, Any]] = field(default_factory=list)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command; return its result (events seen meanwhile are kept)."""
        self._next += 1
        ident = self._next
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    async def wait_for(self, event: str) -> dict[str, Any]:
        """Wait for an event (or return one already seen)."""
        for seen in self._events:
            if seen.get("method") == event:
                self._events.remove(seen)
                return seen
        while True:
            message = json.loads(await self.ws.recv())
            self._event(message)
            if message.get("method") == event:
                self._events.remove(message)
                return message

    def _event(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(json.dumps(params.get("args", []))[:500])
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        if method:
            self._events.append(message)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


@contextlib.asynccontextmanager
async def chromium_page(
    binary: str, *, width: int = 1200, height: int = 900, mobile: bool = False
) -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile, loopback DevTools port) and one blank page.

    Chromium runs in its own process group: its helpers (renderer, GPU, zygote)
    outlive the browser by a moment and keep writing to the profile, so the
    whole group is stopped before the profile is removed.
    """
    profile = tempfile.mkdtemp(prefix="cdp-")
    try:
        proc = subprocess.Popen(
            [
                binary,
                *HEADLESS_FLAGS,
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={Path(profile)}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            browser_url = await asyncio.wait_for(asyncio.to_thread(_devtools_url, proc), 90)
            page_url = await asyncio.to_thread(_page_target, browser_url, proc)
            async with websockets.connect(page_url, max_size=2**26, open_timeout=30) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page", "Network"):
                    await page.call(f"{domain}.enable")
                await page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=mobile,
                )
                yield page
        finally:
            _stop_group(proc)
    finally:
        _remove_profile(profile)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """Stop the browser and every helper in its process group; wait for the browser."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def _remove_profile(profile: str) -> None:
    """Remove the profile; a helper that was still exiting may add a file mid-removal,
    so try again until a pass finds nothing new (bounded)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _devtools_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        found = _LISTENING.search(line)
        if found:
            return found.group(1)
    raise RuntimeError(f"chromium exited before DevTools listened: {''.join(seen)[-2000:]}")


def _page_target(browser_ws: str, proc: subprocess.Popen[str]) -> str:
    """The blank page's DevTools socket; asked again until the browser lists it (it may lag)."""
    host = browser_ws.removeprefix("ws://").split("/", 1)[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}/json/list", timeout=30) as response:
                targets = json.load(response)
            pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]
            problem = f"no page target in {targets}"
        except OSError as exc:  # the listener may not take requests yet
            problem = str(exc)
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium gave no page target: {problem}")
        time.sleep(0.1)
