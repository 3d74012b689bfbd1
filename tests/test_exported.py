"""The public surface is deliberate: adding or removing a name must change this list."""

from __future__ import annotations

import aggregator

EXPORTED = {
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
    "Story",
    "StoreError",
    "TooLargeError",
    "TopicSpec",
    "__version__",
    "load_config",
    "open_context",
    "publish_static",
    "render_all",
    "update_all",
    "update_source",
}


def test_exported_names() -> None:
    assert set(aggregator.__all__) == EXPORTED


def test_exported_names_exist_and_belong_to_the_package() -> None:
    for name in aggregator.__all__:
        value = getattr(aggregator, name)
        if name != "__version__":
            assert value.__module__.startswith("aggregator."), name
