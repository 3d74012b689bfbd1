"""YAML configuration → validated, frozen :class:`Config`.

Loading is strict: unknown keys are errors, every value is validated, and
every error names the file and the key path (``topics[1].query: ...``).
Strings may use ``${VAR}`` or ``${VAR:-default}`` to read the environment;
``$${`` stands for a literal ``${``.
Relative paths are relative to the config file's folder.

Beside this module: ``files`` (reading YAML, ``${VAR}``, key paths),
``units`` (durations and sizes) and ``specs`` (the frozen :class:`Config`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aggregator.config.base import (
    _LANG_RE,
    _NAME_RE,
    _NAME_RULE,
    MIN_TOKEN_DISTINCT,
    Duration,
    Names,
    QueryValue,
    Size,
    _Model,
    _no_controls,
)
from aggregator.config.files import _interpolate, _key_path, _read_yaml
from aggregator.config.push import AUTO, Interval, _Notify, _WebSub, notify_targets, websub_spec
from aggregator.config.sourcekeys import _disable_after, _full_content, _rules, _Source
from aggregator.config.specs import (
    Config,
    IngestSpec,
    ServerSpec,
    SiteSpec,
    WebSubSpec,
    WorkersSpec,
)
from aggregator.config.units import parse_duration, parse_size
from aggregator.errors import ConfigError, QuerySyntaxError
from aggregator.model import (
    NearDupSettings,
    SourceKind,
    SourceRules,
    SourceSpec,
    TopicSpec,
)
from aggregator.topics import Query, compile_query, link_topics

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "IngestSpec",
    "ServerSpec",
    "SiteSpec",
    "WebSubSpec",
    "WorkersSpec",
    "config_json_schema",
    "load_config",
    "parse_duration",
    "parse_size",
]

DEFAULT_CONFIG_PATH = Path("config/aggregator.yaml")


class _Server(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    #: public URL of the published site; defaults to http://host:port/
    base_url: str | None = None
    #: the password of ``/status`` (HTTP Basic or Bearer); no token (or ""), no page
    admin_token: str | None = Field(None, repr=False)
    #: memory for the most requested documents' bytes; the rest are read from the export
    cache_size: Size = 4 * 2**20

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if not value:
            return None  # ``${AGGREGATOR_ADMIN_TOKEN:-}`` unset: no status page
        if len(value) < 16:
            raise ValueError("must be at least 16 characters long")
        # Length alone let "aaaaaaaaaaaaaaaa" open the operator's page. A
        # dictionary phrase cannot be told from a random token here: the docs
        # say to generate one (openssl rand -hex 32).
        if len(set(value)) < MIN_TOKEN_DISTINCT:
            raise ValueError(
                f"must hold at least {MIN_TOKEN_DISTINCT} different characters "
                "(generate one: openssl rand -hex 32)"
            )
        _no_controls(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _no_controls(value)  # a "\r" here would end up in every feed id
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL: {value!r}")
        return value if value.endswith("/") else value + "/"


class _Author(_Model):
    name: str = "aggregator"
    email: str | None = None

    _email_clean = field_validator("email")(_no_controls)


class _Site(_Model):
    title: str = "aggregator"
    description: str = "Topic feeds"
    author: _Author = _Author()
    #: WebSub hub announced in every feed and pinged when a feed changes
    hub: str | None = None
    language: str | None = None

    @field_validator("hub")
    @classmethod
    def _http_hub(cls, value: str | None) -> str | None:
        # Pinged by the daemon and named in every public feed: only a web URL.
        if value is None:
            return None
        _no_controls(value)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL: {value!r}")
        return value


class _Defaults(_Model):
    interval: Interval = timedelta(minutes=30)
    timeout: Duration = timedelta(seconds=20)
    max_bytes: Size = 10 * 2**20
    min_interval: Duration = timedelta(minutes=5)
    max_interval: Duration = timedelta(hours=24)
    #: a URL source failing every poll this long is put to rest (null: never)
    disable_after: Duration | None = timedelta(days=30)


class _Fetch(_Model):
    user_agent: str | None = None
    max_connections: int = Field(20, ge=1, le=1000)
    max_per_host: int = Field(2, ge=1, le=100)
    #: consecutive polls that must see the same 301/308 before the URL is updated
    permanent_redirect_polls: int = Field(3, ge=1, le=100)


class _Ingest(_Model):
    #: parse/normalise processes; null = one per core (update: one fewer, at least one),
    #: 0 = threads in the daemon's process
    workers: int | None = Field(None, ge=0, le=64)
    #: parse well-formed RSS/Atom with the fast parser (feedparser stays the fallback)
    fast_parser: bool = True
    #: skip parsing a 200 response whose body is byte-for-byte the last one parsed
    skip_unchanged_body: bool = True
    #: stop the worker processes after this long without CPU work (null: keep them)
    idle_after: Duration | None = timedelta(minutes=1)


class _Workers(_Model):
    """Scale-out on PostgreSQL: ``aggregator worker`` processes poll; ``run`` publishes."""

    #: workers poll; ``aggregator run`` serves and publishes without polling
    enabled: bool = False
    #: source updates one worker process runs at once (``--concurrency`` overrides)
    concurrency: int = Field(32, ge=1, le=1000)
    #: how often the periodic dispatch queues the due sources (1s to 60s)
    dispatch_every: Duration = timedelta(seconds=5)
    #: a worker silent this long is dead: its jobs go back to the queue
    stalled_after: Duration = timedelta(seconds=30)
    #: finished jobs are deleted once this old (whole hours)
    keep_jobs: Duration = timedelta(hours=1)

    @field_validator("dispatch_every")
    @classmethod
    def _dispatch_every(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(seconds=60) or value.microseconds:
            raise ValueError("must be whole seconds from 1s to 60s")
        return value

    @field_validator("stalled_after")
    @classmethod
    def _stalled_after(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=3):
            raise ValueError("must be at least 3s (workers beat every third of it)")
        return value

    @field_validator("keep_jobs")
    @classmethod
    def _keep_jobs(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1) or value % timedelta(hours=1):
            raise ValueError("must be whole hours, at least 1h")
        return value


class _Retention(_Model):
    #: entries older than this (by publication date) are pruned, unless their
    #: story is still in a topic's current feed
    max_age: Duration = timedelta(days=90)


class _Dedup(_Model):
    """Near-duplicate story matching; the defaults meet the labelled set's targets."""

    enabled: bool = True
    #: bodies shorter than this (words) only merge when exactly equal
    min_words: int = Field(25, ge=5, le=10_000)
    #: shared shingles over the smaller text's to join a story
    containment: float = Field(0.5, gt=0.0, le=1.0)
    #: above this, numbers in the leads may differ (a later version's new toll)
    strict_containment: float = Field(0.8, gt=0.0, le=1.0)
    shingle_words: int = Field(2, ge=1, le=10)
    bands: int = Field(16, ge=1, le=256)
    rows: int = Field(3, ge=1, le=32)
    #: a candidate must be published, or stored, within this time of the new entry
    window: Duration = timedelta(days=14)
    #: paraphrases: embeddings find candidates, the specifics decide (the ``semantic`` extra)
    semantic: bool = False
    similarity: float = Field(0.78, gt=0.0, le=1.0)
    semantic_window: Duration = timedelta(hours=36)
    semantic_languages: tuple[str, ...] = ("en",)
    cross_language: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> _Dedup:
        if self.strict_containment < self.containment:
            raise ValueError("strict_containment must be at least containment")
        return self


class _Topic(_Model):
    name: str = Field(pattern=_NAME_RE)
    title: str | None = None
    description: str = ""
    #: a query string or a structured mapping; compiled (with its key paths)
    #: once every topic is known, so ``topic:`` references can be resolved
    query: QueryValue
    max_items: int = Field(50, ge=1, le=1000)
    private: bool = False
    tokens: tuple[str, ...] = ()
    cache_max_age: Duration = timedelta(minutes=5)
    #: source names or ``tag:TAG`` groups of sources; empty: every source
    sources: Names = ()
    max_age: Duration | None = None
    #: language tags: ``en`` admits ``en`` and ``en-GB``
    lang: Names = ()
    #: replace: an updated story keeps its place; resurface: it rises with its new updated
    updates: Literal["replace", "resurface"] = "replace"
    #: webhooks: each new story of the topic is POSTed to each, signed with its secret
    notify: tuple[_Notify, ...] = ()

    @field_validator("name")
    @classmethod
    def _not_a_feed_path(cls, value: str) -> str:
        # topics/<name>.atom is topic <name>'s feed: a topic named "x.atom"
        # would have its page at topic "x"'s feed path.
        suffix = next((s for s in (".atom", ".rss", ".json", ".opml") if value.endswith(s)), None)
        if suffix:
            raise ValueError(f"a topic name cannot end in {suffix!r}: it is a published feed path")
        return value

    @field_validator("query")
    @classmethod
    def _query_shape(cls, value: object) -> object:
        if not isinstance(value, str | dict):
            raise ValueError("must be a query string or a mapping of all/any/none")
        return value

    @field_validator("lang")
    @classmethod
    def _language_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, code in enumerate(value):
            if not _LANG_RE.match(code):
                raise ValueError(f"item {i}: not a language tag: {code!r} (use e.g. en, fa, pt-BR)")
        return tuple(code.lower() for code in value)

    @model_validator(mode="after")
    def _private_needs_token(self) -> _Topic:
        if self.private and not [t for t in self.tokens if t]:
            raise ValueError("a private topic needs at least one token in 'tokens'")
        if any(len(t) < 16 for t in self.tokens):
            raise ValueError("tokens must be at least 16 characters long")
        return self


class _Config(_Model):
    data_dir: str = "var"
    store: str = "sqlite"
    server: _Server = _Server()
    site: _Site = _Site()
    #: CIDR blocks a source may reach besides public addresses
    allow_networks: tuple[str, ...] = ()
    defaults: _Defaults = _Defaults()
    fetch: _Fetch = _Fetch()
    retention: _Retention = _Retention()
    dedup: _Dedup = _Dedup()
    ingest: _Ingest = _Ingest()
    workers: _Workers = _Workers()
    websub: _WebSub = _WebSub()
    #: further YAML files holding a top-level ``sources:`` list (e.g. from OPML import)
    include: tuple[str, ...] = ()
    sources: tuple[_Source, ...] = ()
    topics: tuple[_Topic, ...] = ()

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be 'sqlite' or a postgresql:// URL")
        return value

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, block in enumerate(value):
            try:
                ipaddress.ip_network(block, strict=False)
            except ValueError:
                raise ValueError(f"item {i}: not a CIDR block: {block!r}") from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> _Config:
        for kind, entries in (("source", self.sources), ("topic", self.topics)):
            seen: set[str] = set()
            for entry in entries:
                if entry.name in seen:
                    raise ValueError(f"duplicate {kind} name {entry.name!r}")
                seen.add(entry.name)
        return self


def _validation_error(
    exc: ValidationError, file: str, prefix: tuple[int | str, ...] = ()
) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [
        p
        for p in (*prefix, *first["loc"])
        if not (isinstance(p, str) and p.startswith("function-"))
    ]
    message = first["msg"].removeprefix("Value error, ")
    if (
        first["type"] == "string_pattern_mismatch"
        and first.get("ctx", {}).get("pattern") == _NAME_RE
    ):
        message = f"{first['input']!r} is not a valid name: {_NAME_RULE}"
    elif first["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        loc = loc[:-1]
    elif first["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
        loc = loc[:-1]
    more = len(errors) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(message, file=file, key=_key_path(loc) or None)


def _load_includes(
    raw: dict[str, Any], base: Path, file: str, pending: Mapping[Path, str] | None
) -> list[Any]:
    """Sources listed in included files, appended after the main file's own."""
    extra: list[Any] = []
    includes = raw.get("include") or []
    if not isinstance(includes, list):
        return extra
    for i, inc in enumerate(includes):
        if not isinstance(inc, str):
            raise ConfigError("must be a file path", file=file, key=f"include[{i}]")
        inc_path = (base / inc).resolve()
        data = _interpolate(_read_yaml(inc_path, pending), (), str(inc_path)) or {}
        if not isinstance(data, dict) or set(data) - {"sources"}:
            raise ConfigError(
                "an included file holds only a top-level 'sources:' list", file=str(inc_path)
            )
        sources = data.get("sources") or []
        if not isinstance(sources, list):
            raise ConfigError("must be a list", file=str(inc_path), key="sources")
        # Paths inside an included file are relative to that file.
        for src in sources:
            if isinstance(src, dict) and isinstance(src.get("path"), str):
                src["path"] = str((inc_path.parent / src["path"]).resolve())
        extra.extend(sources)
    return extra


def load_config(
    path: str | os.PathLike[str] | None = None, *, pending: Mapping[Path, str] | None = None
) -> Config:
    """Load and validate a YAML config.

    Args:
        path: the config file; default ``$AGGREGATOR_CONFIG`` or ``config/aggregator.yaml``.
        pending: resolved path -> text to read instead of that file: an edit
            checked before it is written (``aggregator add`` and friends).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: anything wrong, naming the file and key path.
    """
    path = Path(path or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG_PATH)
    file = str(path)
    raw = _read_yaml(path, pending)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping", file=file)
    raw = _interpolate(raw, (), file)
    base = path.resolve().parent
    own_sources = raw.get("sources") or []
    included = _load_includes(raw, base, file, pending)
    if included and isinstance(own_sources, list):
        raw["sources"] = [*own_sources, *included]
    try:
        model = _Config.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc, file) from None
    if model.workers.enabled and model.store == "sqlite":
        raise ConfigError(
            "workers need a PostgreSQL store: set store: to a postgresql:// URL",
            file=file,
            key="workers.enabled",
        )
    config = _freeze(model, path, base, _topics(model, file), _rules(model, file))
    return replace(config, included=_included_files(raw, base))


def _included_files(raw: dict[str, Any], base: Path) -> tuple[Path, ...]:
    """The files ``include:`` lists, resolved (checked by :func:`_load_includes`)."""
    includes = raw.get("include") or []
    return tuple((base / inc).resolve() for inc in includes if isinstance(inc, str))


def _query_key(index: int, error: QuerySyntaxError) -> str:
    key = f"topics[{index}].query"
    return f"{key}.{error.path}" if error.path else key


def _topic_sources(model: _Config, index: int, topic: _Topic, file: str) -> tuple[str, ...]:
    """A topic's ``sources:`` as source names, ``tag:`` groups expanded."""
    names = {s.name for s in model.sources}
    chosen: dict[str, None] = {}
    for j, entry in enumerate(topic.sources):
        key = f"topics[{index}].sources[{j}]"
        if entry.startswith("tag:"):
            tag = entry.removeprefix("tag:").casefold()
            group = [s.name for s in model.sources if tag in (t.casefold() for t in s.tags)]
            if not group:
                raise ConfigError(f"no source has the tag {tag!r}", file=file, key=key)
            chosen.update(dict.fromkeys(group))
        elif entry in names:
            chosen[entry] = None
        else:
            raise ConfigError(f"unknown source {entry!r}", file=file, key=key)
    return tuple(sorted(chosen))


def _topics(model: _Config, file: str) -> tuple[TopicSpec, ...]:
    """Compile every topic's query, resolve references and scopes; errors name the key path."""
    compiled: dict[str, Query] = {}
    for i, t in enumerate(model.topics):
        try:
            compiled[t.name] = compile_query(t.query)
        except QuerySyntaxError as exc:
            raise ConfigError(exc.detail, file=file, key=_query_key(i, exc)) from None
    try:
        link_topics(compiled)
    except QuerySyntaxError as exc:
        index = next(i for i, t in enumerate(model.topics) if t.name == exc.topic)
        raise ConfigError(exc.detail, file=file, key=_query_key(index, exc)) from None
    return tuple(
        TopicSpec(
            name=t.name,
            title=t.title or t.name,
            # A structured query is kept as its canonical string: same matcher.
            query=t.query if isinstance(t.query, str) else compiled[t.name].text,
            description=t.description,
            max_items=t.max_items,
            private=t.private,
            tokens=t.tokens,
            cache_max_age=t.cache_max_age,
            sources=_topic_sources(model, i, t, file),
            max_age=t.max_age,
            lang=t.lang,
            updates=t.updates,
            notify=notify_targets(t.notify),
        )
        for i, t in enumerate(model.topics)
    )


def _base_interval(value: timedelta | str, default: timedelta | str) -> timedelta:
    """A source's base interval: its own, else the default's, else 30 minutes (``auto``)."""
    for candidate in (value, default):
        if isinstance(candidate, timedelta):
            return candidate
    return timedelta(minutes=30)


def _freeze(
    model: _Config,
    path: Path,
    base: Path,
    topics: tuple[TopicSpec, ...],
    rules: Mapping[str, SourceRules],
) -> Config:
    data_dir = (base / model.data_dir).resolve()
    if model.store == "sqlite":
        store_url = f"sqlite:///{data_dir / 'aggregator.db'}"
    else:
        store_url = model.store.replace("postgresql://", "postgresql+psycopg://", 1)
    server = model.server
    base_url = server.base_url or f"http://{server.host}:{server.port}/"
    d = model.defaults
    sources = tuple(
        SourceSpec(
            name=s.name,
            kind=SourceKind.FILES if s.path is not None else SourceKind.URL,
            location=str((base / s.path).resolve()) if s.path is not None else str(s.url),
            interval=_base_interval(s.interval or d.interval, d.interval),
            timeout=s.timeout or d.timeout,
            max_bytes=s.max_bytes or d.max_bytes,
            tags=s.tags,
            headers=tuple(sorted(s.headers.items())),
            title=s.title,
            full_content=_full_content(s.full_content),
            enabled=s.enabled,
            disable_after=_disable_after(s, d),
            rules=rules.get(s.name),
            adaptive=(s.interval or d.interval) == AUTO,
            websub=s.websub,
        )
        for s in model.sources
    )
    site = model.site
    return Config(
        path=path,
        data_dir=data_dir,
        store_url=store_url,
        server=ServerSpec(
            server.host, server.port, base_url, server.admin_token, server.cache_size
        ),
        site=SiteSpec(
            title=site.title,
            description=site.description,
            author_name=site.author.name,
            author_email=site.author.email,
            hub=site.hub,
            language=site.language,
        ),
        allow_networks=model.allow_networks,
        user_agent=model.fetch.user_agent,
        max_connections=model.fetch.max_connections,
        max_per_host=model.fetch.max_per_host,
        permanent_redirect_polls=model.fetch.permanent_redirect_polls,
        min_interval=d.min_interval,
        max_interval=d.max_interval,
        sources=sources,
        topics=topics,
        retention_max_age=model.retention.max_age,
        dedup=NearDupSettings(**model.dedup.model_dump()),
        ingest=IngestSpec(
            workers=model.ingest.workers,
            fast_parser=model.ingest.fast_parser,
            skip_unchanged_body=model.ingest.skip_unchanged_body,
            idle_after=model.ingest.idle_after,
        ),
        workers=WorkersSpec(**model.workers.model_dump()),
        websub=websub_spec(model.websub, base_url_set=server.base_url is not None),
    )


def config_json_schema() -> Mapping[str, Any]:
    """The JSON Schema of the YAML configuration (durations and sizes as strings)."""
    schema = _Config.model_json_schema(mode="validation")
    schema["title"] = "aggregator configuration"
    return schema
