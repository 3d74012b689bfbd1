"""What the config's models share: the base model, durations, sizes, names, query values."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from aggregator.config.units import parse_duration, parse_size

_NAME_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
#: :data:`_NAME_RE` in words, for the error a user reads
_NAME_RULE = (
    "use 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit"
)
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
#: different characters an admin token must hold (a random 16-character token
#: has about 13; "aaaaaaaaaaaaaaaa" has one)
MIN_TOKEN_DISTINCT = 8
#: C0 controls and DEL: never part of a URL, an address or a header value
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: an HTTP field name (RFC 9110 token)
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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


def _one_or_many(value: Any) -> Any:
    """A single string where a list is expected is a one-item list (``tags: markets``)."""
    return [value] if isinstance(value, str) else value


#: a list of strings, or one string standing for a one-item list
Names = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]


QueryValue = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "a query string, or a mapping of all/any/none lists of queries",
        }
    ),
]
