"""What a request's headers ask, on the hot path (pure): ``Accept-Encoding``, validators,
Basic or Bearer credentials (tokens compared in constant time)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from functools import lru_cache

_ETAG_RE = re.compile(rb'(?:W/)?"([^"]*)"')


@lru_cache(maxsize=512)
def _accepts_gzip(value: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (RFC 9110 12.5.3)."""
    star: float | None = None
    for part in value.lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        q = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        coding = coding.strip()
        if coding in (b"gzip", b"x-gzip"):
            return q > 0
        if coding == b"*":
            star = q
    return star is not None and star > 0


@lru_cache(maxsize=1024)
def _etag_matches(value: bytes, tag: bytes) -> bool:
    """Weak comparison of ``If-None-Match`` against our opaque tag."""
    if value.strip() == b"*":
        return True
    return any(m.group(1) == tag for m in _ETAG_RE.finditer(value))


@lru_cache(maxsize=256)
def _same_date(value: bytes, last_modified: bytes) -> bool:
    if value == last_modified:
        return True
    try:
        return parsedate_to_datetime(value.decode("latin-1")) == parsedate_to_datetime(
            last_modified.decode("ascii")
        )
    except (TypeError, ValueError, IndexError):
        return False


def _token_ok(given: str, tokens: Sequence[str]) -> str | None:
    """The configured token equal to ``given`` (constant time over all tokens)."""
    found: str | None = None
    given_bytes = given.encode("utf-8")
    for token in tokens:
        if hmac.compare_digest(given_bytes, token.encode("utf-8")):
            found = token
    return found


def _basic_password(value: bytes) -> str | None:
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def _admin_credential(value: bytes) -> str | None:
    """The token given by ``Authorization``: a Bearer token, or a Basic password."""
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() == b"bearer":
        try:
            return credentials.strip().decode("utf-8")
        except UnicodeDecodeError:
            return None
    return _basic_password(value)
