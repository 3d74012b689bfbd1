"""A source's keys in the YAML (``sources:`` items) and what they freeze to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from aggregator.config.base import (
    _NAME_RE,
    _TOKEN_RE,
    Duration,
    Names,
    QueryValue,
    Size,
    _Model,
    _no_controls,
)
from aggregator.config.push import Interval
from aggregator.errors import ConfigError, QuerySyntaxError
from aggregator.model import FullContent, SourceRules
from aggregator.text.selector import SelectorError, check_selector
from aggregator.topics.rules import check_rule

if TYPE_CHECKING:
    from aggregator.config import _Config, _Defaults


class _FullContent(_Model):
    #: CSS selector of the article body; none lets the article extractor find it
    selector: str | None = None
    #: pages one update fetches at most; the other new entries wait for the next poll
    max_pages: int = Field(50, ge=1, le=1000)

    @field_validator("selector")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_selector(value)
            except SelectorError as exc:
                raise ValueError(str(exc)) from exc
        return value


class _Rules(_Model):
    """A source's rules: queries in the topic language, applied to its entries at ingest."""

    #: entries this query matches are dropped
    block: QueryValue | None = None
    #: entries this query does not match are dropped
    keep: QueryValue | None = None

    @model_validator(mode="after")
    def _some_rule(self) -> _Rules:
        for value in (self.block, self.keep):
            if value is not None and not isinstance(value, str | dict):
                raise ValueError("a rule is a query string or a mapping of all/any/none")
        if self.block is None and self.keep is None:
            raise ValueError("give 'block', 'keep' or both")
        return self


class _Source(_Model):
    name: str = Field(pattern=_NAME_RE)
    path: str | None = None
    url: str | None = None
    title: str | None = None
    interval: Interval | None = None
    timeout: Duration | None = None
    max_bytes: Size | None = None
    tags: Names = ()
    headers: dict[str, str] = Field(default_factory=dict)
    #: fetch each new entry's page for its full article: true, or {selector: "..."}
    full_content: _FullContent | None = Field(
        None,
        json_schema_extra={"description": 'true, or a mapping such as {selector: "article .body"}'},
    )
    #: false: never subscribe to this source's WebSub hub
    websub: bool = True
    #: false: never polled, its stories kept (``aggregator disable``/``enable``)
    enabled: bool = True
    #: failing every poll this long puts the source to rest; default: defaults.disable_after
    disable_after: Duration | None = None
    #: ``{block: QUERY, keep: QUERY}``: entries dropped at ingest
    rules: _Rules | None = None

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # The value is a secret (Authorization, an API key): never echo it.
        for name, text in value.items():
            if not _TOKEN_RE.match(name):
                raise ValueError(f"{name!r}: not a valid header name")
            try:
                _no_controls(text)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value

    @field_validator("full_content", mode="before")
    @classmethod
    def _full_content_flag(cls, value: object) -> object:
        # ``true`` is the extractor's choice; ``false`` (or nothing) turns it off.
        if value is True:
            return {}
        if value is False:
            return None
        if value is not None and not isinstance(value, Mapping):
            raise ValueError("must be true, false or a mapping such as {selector: 'article'}")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> _Source:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' (local seed folder) or 'url'")
        if self.path is not None and self.full_content is not None:
            raise ValueError("full_content applies to 'url' sources only")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"url must be an absolute http(s) URL: {self.url!r}")
        return self


def _rules(model: _Config, file: str) -> dict[str, SourceRules]:
    """Each source's compiled-and-checked rules, by name; errors name the key path."""
    found: dict[str, SourceRules] = {}
    for i, s in enumerate(model.sources):
        if s.rules is None:
            continue
        texts: dict[str, str | None] = {"block": None, "keep": None}
        for key in texts:
            value = getattr(s.rules, key)
            if value is None:
                continue
            try:
                texts[key] = check_rule(value)
            except QuerySyntaxError as exc:
                where = f"sources[{i}].rules.{key}" + (f".{exc.path}" if exc.path else "")
                raise ConfigError(exc.detail, file=file, key=where) from None
        found[s.name] = SourceRules(block=texts["block"], keep=texts["keep"])
    return found


def _disable_after(source: _Source, defaults: _Defaults) -> timedelta | None:
    # ``disable_after: null`` on the source means never; absent means the default.
    if "disable_after" in source.model_fields_set:
        return source.disable_after
    return defaults.disable_after


def _full_content(value: _FullContent | None) -> FullContent | None:
    if value is None:
        return None
    return FullContent(selector=value.selector, max_pages=value.max_pages)
