"""The exception tree of aggregator.

Every error aggregator raises on purpose derives from :class:`AggregatorError`,
and ``str(error)`` is a complete log line that names the file, key or source
it is about. Third-party exceptions are wrapped at the boundary where they
occur (``raise FetchError(...) from exc``).

::

    AggregatorError
    ├── ConfigError                 bad configuration (file + key path)
    ├── QuerySyntaxError            a topic query that does not compile (column, path)
    ├── SourceError                 a problem of one source; recorded, never fatal
    │   ├── FetchError              getting bytes failed
    │   │   ├── HTTPStatusError     non-success status (404, 410, 5xx...)
    │   │   ├── TooLargeError       body over the size cap (after decompression)
    │   │   ├── DeadlineError       the whole fetch took longer than allowed
    │   │   ├── RedirectError       too many redirects, or a loop
    │   │   ├── BlockedAddressError SSRF guard refused an address or scheme
    │   │   └── BackoffError        the host asked us to wait (429/Retry-After); not sent
    │   ├── ParseError              bytes that are not a usable document
    │   └── SeedFileError           a local file that cannot be ingested
    ├── StoreError                  the database failed
    │   └── DataDirLockedError      another daemon holds the data folder
    ├── PublishError                writing a published document failed
    └── ListenError                 the web server cannot listen on its address
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# A URL inside free text: a scheme, "://", then everything up to whitespace or
# a quote or bracket that ends it in our own messages.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_QUERY_VALUE = re.compile(r"=[^&;]*")
#: what stands in for a redacted secret
REDACTED = "***"


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return url.split("?", 1)[0].split("@")[-1]
    netloc = parts.netloc.rpartition("@")[2] if host is not None else parts.netloc
    query = _QUERY_VALUE.sub("=" + REDACTED, parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# A header's value quoted in a library's message ("Illegal header value
# b'Bearer ...'"): headers carry credentials, so the value never leaves.
_HEADER_VALUE = re.compile(
    r"""(header (?:value|field|name)s?:?\s*)(b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*")""",
    re.IGNORECASE,
)


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``).

    For every value shown on a terminal or written to a text log: a guid or a
    seed file's name could otherwise end the line and forge the next one, or
    send the terminal an escape sequence.
    """
    if _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# A libpq connection string's password (``host=db password=secret``).
_CONNINFO_PASSWORD = re.compile(r"""\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'&;]+)""", re.I)


def redact(text: str) -> str:
    """``text`` with URL secrets (:func:`redact_urls`), quoted header values and
    connection-string passwords hidden."""
    text = _HEADER_VALUE.sub(lambda m: m.group(1) + REDACTED, redact_urls(text))
    return _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)


def redact_urls(text: str) -> str:
    """``text`` with the secrets of every URL in it hidden.

    A source URL often carries its credentials (``https://user:pass@host/``,
    ``?api_key=...``): user info is dropped, each query value and the
    fragment are replaced, so error texts can be logged, stored and shown.
    Idempotent.

    Args:
        text: any message.

    Returns:
        The message with each URL redacted.
    """
    return _URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0)), text)


def without_urls(text: str) -> str:
    """``text`` with every URL replaced by ``<url>``: for what the public may read."""
    return _URL_IN_TEXT.sub("<url>", text)


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
    """A topic query does not compile.

    ``column`` (1-based) points into ``query`` when the problem is in a query
    string; it is None for a problem of a structured query's shape. ``path``
    is where the problem sits inside a structured query (``any[1]``, empty for
    a plain string), ``topic`` the topic whose query it is when known (a
    ``topic:`` reference that is unknown or makes a cycle).
    """

    def __init__(
        self,
        message: str,
        *,
        query: str,
        column: int | None,
        path: str = "",
        topic: str | None = None,
    ) -> None:
        self.message = message
        self.query = query
        self.column = column
        self.path = path
        self.topic = topic
        text = message if column is None else f"{message} at column {column}"
        super().__init__(f"{path}: {text}" if path else text)

    @property
    def detail(self) -> str:
        """The message with its column, without the path: for a config key path to prefix."""
        return self.message if self.column is None else f"{self.message} at column {self.column}"


class SourceError(AggregatorError):
    """A problem of one source. Recorded on the source; never stops the others."""

    def __init__(self, source: str, message: str) -> None:
        # Redacted here, once, so no copy of the text (log, database,
        # /healthz, CLI) can carry a source's credentials.
        self.source = redact(source)
        self.message = redact(message)
        super().__init__(f"{self.source}: {self.message}" if self.source else self.message)


class FetchError(SourceError):
    """Getting the bytes of a source failed."""


class HTTPStatusError(FetchError):
    """The server answered with a status we do not accept.

    ``retry_after`` is the server's ``Retry-After`` (seconds or HTTP-date) as an
    aware UTC time, or None when absent or unreadable. ``url`` is the URL that
    answered (after any redirect): a back-off is for its host.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        status: int,
        retry_after: datetime | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.url = url
        super().__init__(source, message)


class TooLargeError(FetchError):
    """The body exceeded the size cap (counted after decompression)."""


class DeadlineError(FetchError):
    """The whole fetch (all hops, all reads) exceeded its deadline."""


class RedirectError(FetchError):
    """Too many redirects, a redirect loop, or a redirect without a location."""


class BlockedAddressError(FetchError):
    """The SSRF guard refused a scheme or a resolved address."""


class BackoffError(FetchError):
    """The host is backing off after it answered 429 or ``Retry-After``; nothing was sent.

    ``retry_after`` is when the host may be asked again (aware UTC).
    """

    def __init__(self, source: str, message: str, *, retry_after: datetime) -> None:
        self.retry_after = retry_after
        super().__init__(source, message)


class ParseError(SourceError):
    """The bytes are not a document we can read."""


class SeedFileError(SourceError):
    """A local seed file cannot be ingested (empty, binary, too large, unreadable...).

    ``path`` is the file's path; ``str()`` names it. ``unseen``: what lies at
    ``path`` (a folder that could not be listed, a file that could not be
    stat'ed) is unknown, which is not the same as gone.
    """

    def __init__(self, source: str, path: str, reason: str, *, unseen: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.unseen = unseen
        super().__init__(source, f"{path}: {reason}")


class StoreError(AggregatorError):
    """The store (database) failed.

    Its text often names the database URL, and the driver's message may echo
    a connection string: both are redacted here (user info, query values,
    ``password=``), so no copy of the text carries the database password.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(message))


class DataDirLockedError(StoreError):
    """Another running daemon holds the data folder's lock."""

    def __init__(self, data_dir: str, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        who = f"a running daemon (pid {pid})" if pid else "another running daemon"
        super().__init__(f"{data_dir}: data folder is locked by {who}")


class PublishError(AggregatorError):
    """Writing a published document failed."""


class ListenError(AggregatorError):
    """The web server cannot listen on its configured address (in use, not ours)."""

    def __init__(self, host: str, port: int, reason: str, *, file: str | None = None) -> None:
        self.host = host
        self.port = port
        where = f" in {file}" if file else ""
        shown = f"[{host}]" if ":" in host else host
        super().__init__(
            f"{shown}:{port}: cannot listen: {reason}; "
            f"set server.port (or server.host){where} to a free address"
        )
