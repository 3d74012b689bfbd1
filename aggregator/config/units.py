"""Durations and sizes as the configuration writes them: ``1h30m``, ``10MiB`` (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration", "parse_size", "short_duration"]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: object) -> timedelta:
    """Parse ``15m``, ``1h30m``, ``20s``, ``2d`` or a number of seconds.

    Raises:
        ValueError: the value is not a positive duration.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or _DURATION_RE.sub("", text):
            raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 1h30m, 2d)")
        seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in _DURATION_RE.findall(text))
    else:
        raise ValueError(f"not a duration: {value!r}")
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """A duration as the configuration writes it: ``30m``, ``1h30m``, ``2d``, ``250ms``.

    Whole seconds read back the same through :func:`parse_duration`; a duration under
    a second is written in milliseconds, and zero as ``0s``.
    """
    seconds = value.total_seconds()
    if seconds < 0:
        return "-" + format_duration(-value)
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def short_duration(value: timedelta) -> str:
    """:func:`format_duration` cut to its two largest units: ``3d4h``, ``29m52s``, ``2h``."""
    text = format_duration(value)
    return "".join(re.findall(r"-?\d+(?:ms|[dhms])", text)[:2])


def parse_size(value: object) -> int:
    """Parse ``10MiB``, ``500KB``, ``1GB`` or a number of bytes.

    Raises:
        ValueError: the value is not a positive size.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)):
        unit = m.group(2).lower()
        if unit not in _SIZE_UNITS:
            raise ValueError(f"unknown size unit in {value!r} (use B, KB, KiB, MB, MiB, GB, GiB)")
        size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 10MiB)")
    if size <= 0:
        raise ValueError(f"size must be positive: {value!r}")
    return size
