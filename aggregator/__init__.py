"""aggregator: feeds and local seed articles in, deduplicated topic feeds out.

The public surface is what this module exports (``tests/test_exported.py``
pins it); everything else is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.errors import (
    AggregatorError,
    BackoffError,
    BlockedAddressError,
    ConfigError,
    DataDirLockedError,
    DeadlineError,
    FetchError,
    HTTPStatusError,
    ParseError,
    PublishError,
    QuerySyntaxError,
    RedirectError,
    SeedFileError,
    SourceError,
    StoreError,
    TooLargeError,
)
from aggregator.model import (
    Dateline,
    FullContent,
    Item,
    Origin,
    Outcome,
    RawEntry,
    Related,
    SourceKind,
    SourceResult,
    SourceSpec,
    SourceState,
    Story,
    TopicSpec,
)

if TYPE_CHECKING:
    from aggregator.config import Config, load_config
    from aggregator.update import (
        Context,
        open_context,
        publish_static,
        render_all,
        update_all,
        update_source,
    )

# The engine's names load on first use: ``aggregator.update`` imports every parser,
# publisher and the store, which commands such as ``check`` and ``--help`` never
# touch (PEP 562).
_FROM_PIPELINE = frozenset(
    {"Context", "open_context", "publish_static", "render_all", "update_all", "update_source"}
)
# So do the config's: pydantic and YAML, which the parse workers (they import
# this package first) never need.
_FROM_CONFIG = frozenset({"Config", "load_config"})


def _version() -> str:
    # importlib.metadata brings the email package (1 MiB): a parse worker, which
    # imports this package first, never asks for the version.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aggregator")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.1.0.dev0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _FROM_PIPELINE or name in _FROM_CONFIG:
        import importlib

        module = importlib.import_module(
            "aggregator.update" if name in _FROM_PIPELINE else "aggregator.config"
        )
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aggregator' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_PIPELINE | _FROM_CONFIG | {"__version__"})


__all__ = [
    "AggregatorError",
    "BackoffError",
    "BlockedAddressError",
    "Config",
    "ConfigError",
    "Context",
    "DataDirLockedError",
    "Dateline",
    "DeadlineError",
    "FetchError",
    "FullContent",
    "HTTPStatusError",
    "Item",
    "Origin",
    "Outcome",
    "ParseError",
    "PublishError",
    "QuerySyntaxError",
    "RawEntry",
    "RedirectError",
    "Related",
    "SeedFileError",
    "SourceError",
    "SourceKind",
    "SourceResult",
    "SourceSpec",
    "SourceState",
    "StoreError",
    "Story",
    "TooLargeError",
    "TopicSpec",
    "__version__",
    "load_config",
    "open_context",
    "publish_static",
    "render_all",
    "update_all",
    "update_source",
]
