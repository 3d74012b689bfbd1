"""Canonical URLs: scheme and host case, default ports, percent-encoding, dot segments,
tracking parameters removed (pure). Re-exported by :mod:`aggregator.normalise`."""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

__all__ = ["TRACKING_PARAMS", "TRACKING_PREFIXES", "canonical_url"]

#: Query parameters that only track the reader (campaigns, click ids, mail
#: lists); removed from canonical URLs. Compared case-insensitively. Any
#: parameter starting with one of :data:`TRACKING_PREFIXES` is removed too.
#: Generic names that some sites use for real content (``ref``, ``source``,
#: ``cid``, ``si``, ``feature``) are deliberately absent.
TRACKING_PARAMS = frozenset(
    {
        # Google Ads / Analytics / Merchant
        "gclid", "gclsrc", "gbraid", "wbraid", "dclid", "srsltid", "_ga", "_gl",
        # Meta (Facebook, Instagram)
        "fbclid", "igshid", "igsh", "fb_action_ids", "fb_action_types", "fb_ref",
        "fb_source", "action_object_map", "action_type_map", "action_ref_map",
        # Microsoft, Yandex, X/Twitter, TikTok, LinkedIn, Snapchat, Reddit, Pinterest
        "msclkid", "cvid", "ocid", "yclid", "ysclid", "twclid", "ref_src", "ref_url",
        "ttclid", "li_fat_id", "sccid", "rdt_cid", "epik",
        # Mailchimp, HubSpot, Marketo, Klaviyo, MailerLite, Drip, Vero, beehiiv
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp",
        "hsctatracking", "mkt_tok", "_kx", "ml_subscriber", "ml_subscriber_hash", "__s",
        "vero_id", "vero_conv", "_bhlid",
        # Adobe, Webtrends, AT Internet, comScore, Matomo/Piwik, Openstat, Omeda
        "s_cid", "s_kwcid", "sc_cid", "icid", "wt.mc_id", "xtor", "at_medium",
        "at_campaign", "at_source", "ns_mchannel", "ns_source", "ns_campaign",
        "ns_linkname", "ns_fee", "pk_campaign", "pk_kwd", "pk_keyword", "pk_source",
        "pk_medium", "pk_content", "pk_cid", "piwik_campaign", "piwik_kwd", "_openstat",
        "oly_anon_id", "oly_enc_id", "hmb_campaign", "hmb_medium", "hmb_source",
        # Yahoo, Alibaba, Taboola, Outbrain, NYT share links, misc click ids
        "guccounter", "guce_referrer", "guce_referrer_sig", "ncid", "spm", "scm", "tblci",
        "dicbo", "smid", "smtyp", "wickedid", "rb_clickid",
    }
)  # fmt: skip
#: Parameter-name prefixes that only track (Urchin/GA UTM, Matomo MTM).
TRACKING_PREFIXES = ("utm_", "mtm_")

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = "!$&'()*+,;="
_HOST_CHARS = _UNRESERVED | frozenset(_SUB_DELIMS)
_PATH_SAFE = _UNRESERVED | frozenset(_SUB_DELIMS + ":@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HEX = "0123456789ABCDEFabcdef"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))

# A URL the steps of :func:`canonical_url` return as it is (an empty path aside),
# whatever the base: lower-case http(s), a lower-case host name of plain labels,
# no port, user info, percent sign, query, fragment or ``;`` (urljoin drops an
# empty parameter), no character a step encodes or drops. Joined to any base, an
# absolute URL of this shape stays itself. A dot segment (``/.``) is checked apart.
_PLAIN_URL = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(/[A-Za-z0-9\-._~!$&'()*+,=:@/]*)?")
#: a base the steps read without an error (urlsplit refuses some brackets and
#: non-ASCII hosts, and the URL is then None whatever it is)
_PLAIN_BASE = re.compile(r"[\x21-\x5a\x5c\x5e-\x7e]*")


def _normalise_percent(text: str, safe: frozenset[str]) -> str:
    """RFC 3986 §6.2.2 percent-encoding normalisation.

    Escapes of unreserved characters are decoded, other escapes upper-cased,
    and characters outside ``safe`` (spaces, non-ASCII, ``"<>{}|^``...) are
    encoded as UTF-8. A stray ``%`` becomes ``%25``.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "%":
            if i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
                byte = int(text[i + 1 : i + 3], 16)
                decoded = chr(byte)
                out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1 : i + 3].upper())
                i += 3
                continue
            out.append("%25")
        elif char in safe:
            out.append(char)
        else:
            out.extend(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on an absolute path."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments[1:], start=1):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _canonical_host(hostname: str) -> str | None:
    """Lower-case, IDNA-encoded host for a netloc (IPv6 in brackets), or None."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            return None
    host = hostname.rstrip(".").lower()
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if any(c not in _HOST_CHARS for c in host):
        return None
    return host


def _is_tracking(name: str) -> bool:
    key = unquote(name).lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def canonical_url(url: str | None, *, base: str | None = None) -> str | None:
    """Return the canonical absolute http(s) form of ``url``, or None.

    Resolved against ``base`` when relative; only http and https survive.
    Scheme and host lower-cased, host IDNA-encoded, user info and default
    ports removed, dot segments resolved, empty path → ``/``, percent-encoding
    normalised (RFC 3986 §6.2.2), fragment removed, tracking parameters
    (:data:`TRACKING_PARAMS`, ``utm_*``, ``mtm_*``) removed and the other query
    parameters kept in their order. Idempotent.

    Args:
        url: a URL as found in a document; None or blank gives None.
        base: the URL of the document, for relative ``url``.

    Returns:
        The canonical URL, or None when ``url`` is missing, malformed, or not
        http(s).
    """
    if not url:
        return None
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None and "/." not in url and (not base or _PLAIN_BASE.fullmatch(base)):
        # Already canonical but for an empty path: what the steps give it.
        return url if plain.group(1) else url + "/"
    return _canonical_steps(url, base)


def _canonical_steps(url: str, base: str | None) -> str | None:
    """:func:`canonical_url` step by step (its fast path's reference)."""
    # Browsers drop leading/trailing C0+space and tab/newline anywhere.
    url = _TAB_NEWLINE_RE.sub("", url).strip(_C0_AND_SPACE)
    if not url:
        return None
    # Special schemes treat `\` as `/` before the query (WHATWG URL), so do we.
    head, mark, tail = url.partition("?")
    url = head.replace("\\", "/") + mark + tail
    try:
        if base:
            base_parts = urlsplit(base.strip())
            if base_parts.scheme.lower() in ("http", "https"):
                url = urljoin(base.strip(), url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return None
        host = _canonical_host(parts.hostname or "")
        port = parts.port
    except ValueError:
        return None
    if host is None:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"

    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    path = _remove_dot_segments(_normalise_percent(path, _PATH_SAFE))

    params = []
    if parts.query:
        for param in parts.query.split("&"):
            if not param:
                continue
            name = param.split("=", 1)[0]
            if _is_tracking(name):
                continue
            params.append(_normalise_percent(param, _QUERY_SAFE))
    return urlunsplit((scheme, netloc, path, "&".join(params), ""))


@functools.lru_cache(maxsize=64)
def _http_base(base_url: str | None) -> str | None:
    """``base_url`` as a canonical absolute http(s) URL, or None when unusable.

    Cached: the entries of one feed share their base, and ask for it several times each.
    """
    return canonical_url(base_url) if base_url else None
