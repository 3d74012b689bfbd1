"""The config's shared field types: durations, sizes, the strict base model, control characters."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from aggregator.config.units import parse_duration, parse_size

__all__ = ["DURATION_FORMS", "Duration", "Size", "_Model", "_no_controls"]

#: C0 controls and DEL: never part of a URL, an address or a header value
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _no_controls(value: str | None) -> str | None:
    """Refuse a control character (a CRLF env file leaves a ``\r``), naming only its position."""
    if value is not None:
        found = _CONTROL_RE.search(value)
        if found is not None:
            raise ValueError(
                f"control character {found.group()!r} at position {found.start()} "
                "(a trailing newline from an env file?)"
            )
    return value


#: a duration's forms in the JSON Schema
DURATION_FORMS: list[dict[str, str]] = [
    {"type": "string", "pattern": r"^(\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)\\s*)+$"},
    {"type": "number"},
]
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": DURATION_FORMS, "description": "a duration: 90s, 15m, 1h30m, 2d, or seconds"}
    ),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "integer"}],
            "description": "a size: 512KiB, 10MiB, 1GB, or bytes",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
