"""The exception tree of aggregator.

Every error aggregator raises on purpose derives from :class:`AggregatorError`,
and ``str(error)`` is a complete log line that names the file, key or source
it is about. Third-party exceptions are wrapped at the boundary where they
occur (``raise FetchError(...) from exc``).

::

    AggregatorError
    ├── ConfigError                 bad configuration (file + key path)
    ├── QuerySyntaxError            a topic query that does not parse (column)
    ├── SourceError                 a problem of one source; recorded, never fatal
    │   ├── FetchError              getting bytes failed
    │   │   ├── HTTPStatusError     non-success status (404, 410, 5xx...)
    │   │   ├── TooLargeError       body over the size cap (after decompression)
    │   │   ├── DeadlineError       the whole fetch took longer than allowed
    │   │   ├── RedirectError       too many redirects, or a loop
    │   │   └── BlockedAddressError SSRF guard refused an address or scheme
    │   ├── ParseError              bytes that are not a usable document
    │   └── SeedFileError           a local file that cannot be ingested
    ├── StoreError                  the database failed
    │   └── DataDirLockedError      another daemon holds the data folder
    └── PublishError                writing a published document failed
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class AggregatorError(Exception):
    """Base class of every error aggregator raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross the ingest engine's process pool: rebuild them from
        # their message and attributes, whatever their __init__ takes.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[AggregatorError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(AggregatorError):
    """The configuration is invalid.

    ``str()`` reads ``FILE: KEY.PATH: message`` (the key part only when known).
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.message = message
        parts = [p for p in (file, key) if p]
        super().__init__(": ".join([*parts, message]))


class QuerySyntaxError(AggregatorError):
    """A topic query does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, *, query: str, column: int) -> None:
        self.message = message
        self.query = query
        self.column = column
        super().__init__(f"{message} at column {column}")


class SourceError(AggregatorError):
    """A problem of one source. Recorded on the source; never stops the others."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}" if source else message)


class FetchError(SourceError):
    """Getting the bytes of a source failed."""


class HTTPStatusError(FetchError):
    """The server answered with a status we do not accept.

    ``retry_after`` is the server's ``Retry-After`` (seconds or HTTP-date) as an
    aware UTC time, or None when absent or unreadable.
    """

    def __init__(
        self, source: str, message: str, *, status: int, retry_after: datetime | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(source, message)


class TooLargeError(FetchError):
    """The body exceeded the size cap (counted after decompression)."""


class DeadlineError(FetchError):
    """The whole fetch (all hops, all reads) exceeded its deadline."""


class RedirectError(FetchError):
    """Too many redirects, a redirect loop, or a redirect without a location."""


class BlockedAddressError(FetchError):
    """The SSRF guard refused a scheme or a resolved address."""


class ParseError(SourceError):
    """The bytes are not a document we can read."""


class SeedFileError(SourceError):
    """A local seed file cannot be ingested (empty, binary, too large, unreadable...).

    ``path`` is the file's path; ``str()`` names it.
    """

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(source, f"{path}: {reason}")


class StoreError(AggregatorError):
    """The store (database) failed."""


class DataDirLockedError(StoreError):
    """Another running daemon holds the data folder's lock."""

    def __init__(self, data_dir: str, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        who = f"a running daemon (pid {pid})" if pid else "another running daemon"
        super().__init__(f"{data_dir}: data folder is locked by {who}")


class PublishError(AggregatorError):
    """Writing a published document failed."""
