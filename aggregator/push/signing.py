"""HMAC signatures: a hub's ``X-Hub-Signature`` on distributions, ours on webhooks (pure)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HUB_ALGORITHMS", "sign", "valid_hub_signature"]

#: the algorithms WebSub allows for ``X-Hub-Signature`` (sha1 only for old hubs)
HUB_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """``<algorithm>=<hex HMAC of body>``, the form both headers use."""
    digest = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return f"{algorithm}={digest}"


def valid_hub_signature(header: str | None, secret: str, body: bytes) -> bool:
    """Whether ``header`` is a valid ``X-Hub-Signature`` of ``body`` with ``secret``.

    A missing header, an algorithm outside :data:`HUB_ALGORITHMS` or a wrong
    digest are all invalid; the digests are compared in constant time.
    """
    if not header or "=" not in header:
        return False
    algorithm, _, given = header.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if algorithm not in HUB_ALGORITHMS:
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())
