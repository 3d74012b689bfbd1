"""Push settings: ``websub:`` (subscribing to hubs), ``interval: auto``, topics' ``notify:``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from aggregator.config.base import DURATION_FORMS, Duration, _Model, _no_controls
from aggregator.config.specs import WebSubSpec
from aggregator.config.units import parse_duration
from aggregator.model import WebhookTarget

__all__ = ["AUTO", "Interval", "_Notify", "_WebSub", "notify_targets", "websub_spec"]

#: the ``interval:`` value that lets the source's rhythm choose
AUTO = "auto"


def _interval(value: Any) -> Any:
    """``auto``, or a duration."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    return parse_duration(value)


Interval = Annotated[
    timedelta | Literal["auto"],
    BeforeValidator(_interval),
    WithJsonSchema(
        {
            "anyOf": [{"const": AUTO}, *DURATION_FORMS],
            "description": "auto (follow the source's rhythm), or a duration: 15m, 1h, 2d",
        }
    ),
]


def _web_url(value: str) -> str:
    _no_controls(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL: {value!r}")
    return value


class _WebSub(_Model):
    """Subscribing to the WebSub hubs that sources' feeds name."""

    #: subscribe at all; default: on when ``server.base_url`` is set (the hub must reach us)
    subscribe: bool | None = None
    #: how often a subscribed source is still polled, in case the hub goes quiet
    fallback_interval: Duration = timedelta(hours=6)
    #: the lease asked of hubs (``hub.lease_seconds``); renewed before it ends
    lease: Duration = timedelta(days=10)

    @field_validator("lease")
    @classmethod
    def _lease(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("must be at least 1h")
        return value


class _Notify(_Model):
    """One webhook of a topic: each new story is POSTed to ``url``, signed with ``secret``."""

    url: str
    secret: str = Field(min_length=16, repr=False)

    _url_ok = field_validator("url")(_web_url)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        _no_controls(value)
        return value


def notify_targets(entries: tuple[_Notify, ...]) -> tuple[WebhookTarget, ...]:
    """The frozen targets of a topic's ``notify:`` list."""
    return tuple(WebhookTarget(url=n.url, secret=n.secret) for n in entries)


def websub_spec(model: _WebSub, *, base_url_set: bool) -> WebSubSpec:
    """The frozen ``websub:`` settings; ``subscribe`` defaults to whether ``base_url`` is set."""
    subscribe = model.subscribe if model.subscribe is not None else base_url_set
    return WebSubSpec(subscribe, model.fallback_interval, model.lease)
