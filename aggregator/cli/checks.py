"""What ``aggregator check`` warns about: settings that load but fail at run time.

A config can be valid and still not work: a seed folder that does not
exist, a source or a webhook target on a loopback or private address the
SSRF guard refuses without ``allow_networks``, the same URL twice, a
``data_dir`` that is a file. Each warning names the file and the key path, and says what to do.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.model import SourceKind
from aggregator.sources.http import address_refusal, allow_hint, parse_networks

__all__ = ["config_warnings"]


def config_warnings(config: Config) -> list[str]:
    """The config's run-time problems, one line each (reads the file system, no network).

    Returns:
        Lines such as ``aggregator.yaml: sources[1] (seeds).path: seed folder
        /srv/seeds does not exist``, in the order of the config.
    """
    file = str(config.path)
    out: list[str] = []
    if config.data_dir.exists() and not config.data_dir.is_dir():
        out.append(f"{file}: data_dir: {config.data_dir} is a file, not a folder")
    allow = parse_networks(config.allow_networks)
    first_with: dict[str, str] = {}
    for i, spec in enumerate(config.sources):
        key = f"sources[{i}] ({spec.name})"
        if spec.kind is SourceKind.FILES:
            folder = spec.location
            if not Path(folder).is_dir():
                out.append(f"{file}: {key}.path: seed folder {folder} does not exist")
            continue
        url = spec.location
        held = first_with.setdefault(url, key)
        if held != key:
            out.append(f"{file}: {key}.url: the same URL as {held}: {url}")
        refusal = _refusal(url, allow)
        if refusal is not None:
            reason, address = refusal
            out.append(
                f"{file}: {key}.url: {reason} is refused unless allow_networks admits it: "
                f"add {allow_hint(address)}"
            )
    for t, topic in enumerate(config.topics):
        for n, target in enumerate(topic.notify):
            refusal = _refusal(target.url, allow)
            if refusal is not None:
                reason, address = refusal
                out.append(
                    f"{file}: topics[{t}] ({topic.name}).notify[{n}].url: {reason} is refused "
                    f"unless allow_networks admits it: add {allow_hint(address)}"
                )
    return out


def _refusal(
    url: str, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> tuple[str, str] | None:
    """Why the SSRF guard will refuse the URL's host, judged without resolving names.

    ``localhost`` counts as 127.0.0.1; other names are left to the fetch.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if host is None:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        address = "127.0.0.1"
    else:
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            return None
    reason = address_refusal(address, allow)
    return (reason, address) if reason is not None else None
