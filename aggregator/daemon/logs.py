"""The daemon's log lines: text or JSON, with the update's source, outcome and duration."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from aggregator.errors import printable

__all__ = ["JsonFormatter", "RepeatFilter", "TextFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """JSON lines: time, level, logger, message, and source/outcome/duration when given."""

    _EXTRA = ("source", "outcome", "duration", "new", "updated", "removed", "topics")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self._EXTRA:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, one line per message: control characters in the
    message (from a guid, a file name, a feed) are escaped, never written."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class RepeatFilter(logging.Filter):
    """Let the same line (by its first line of text) through at most once per ``interval`` s.

    For loggers that can repeat one error thousands of times a second: the
    event loop's ``socket.accept() out of system resource`` once wrote 265,000
    lines in 45 s when clients took every descriptor. The next line let
    through says how many were dropped.
    """

    def __init__(self, interval: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        #: first line -> (when last let through, dropped since)
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg).split("\n", 1)[0]
        now = self._clock()
        last, dropped = self._seen.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._seen[key] = (last, dropped + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} like it dropped in the last {now - last:.0f} s)"
        return True


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send logs to stderr as text (``LEVEL logger: message``) or JSON lines.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        fmt: ``text`` or ``json``.
        stream: where to write; default stderr.
    """
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler logs every tick at INFO: keep it for warnings.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    # watchfiles logs every change it sees at INFO.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, root.level))
    # The event loop and the server can repeat one error per connection attempt.
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old_filter in [f for f in logger.filters if isinstance(f, RepeatFilter)]:
            logger.removeFilter(old_filter)
        logger.addFilter(RepeatFilter())
