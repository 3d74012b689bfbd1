"""Which addresses a fetch may reach: ``allow_networks``, the SSRF refusal rules, resolving
and vetting a host (every address it resolves to)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aggregator.errors import BlockedAddressError, FetchError

__all__ = [
    "IPNetwork",
    "Resolver",
    "address_refusal",
    "allow_hint",
    "parse_networks",
    "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# IPv6 ranges that embed or translate an IPv4 address: checking the IPv6
# address alone would let ::ffff:127.0.0.1 or 64:ff9b::7f00:1 through.
_EMBEDDING_V6 = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated"),
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "NAT64"),
    (ipaddress.IPv6Network("2002::/16"), "6to4"),
    (ipaddress.IPv6Network("2001::/32"), "Teredo"),
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse ``allow_networks`` CIDR blocks.

    Args:
        cidrs: blocks such as ``"127.0.0.0/8"`` or ``"fd00::/8"``.

    Returns:
        The networks, in order.

    Raises:
        ValueError: naming the first block that is not a valid network.
    """
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"allow_networks: {cidr!r} is not a CIDR block: {exc}") from exc
    return tuple(networks)


def address_refusal(address: str, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Say why the SSRF guard refuses ``address``, or None when it may be reached.

    Loopback, private, link-local, multicast, unspecified, reserved and other
    non-global addresses are refused, as are IPv6 forms that embed an IPv4
    address (mapped, translated, NAT64, 6to4, Teredo, compatible), unless the
    address lies inside one of ``allow``.

    Args:
        address: an IPv4 or IPv6 address (an IPv6 zone ``%eth0`` is ignored).
        allow: networks admitted despite the rules (``allow_networks``).

    Returns:
        A short reason such as ``"loopback address 127.0.0.1"``, or None.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"unparsable address {address!r}"
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    if ip.is_unspecified:
        return f"unspecified address {ip}"
    if ip.is_loopback:
        return f"loopback address {ip}"
    # Embedding forms next: their flags describe the IPv6 range, not the
    # IPv4 address inside, which is what a connection would actually reach.
    if isinstance(ip, ipaddress.IPv6Address):
        for net, kind in _EMBEDDING_V6:
            if ip in net:
                return f"{kind} address {ip}"
    kinds = (
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for kind, flagged in kinds:
        if flagged:
            return f"{kind} address {ip}"
    if not ip.is_global:
        return f"non-global address {ip}"
    return None


def allow_hint(address: str) -> str:
    """The ``allow_networks`` line that would admit ``address`` (for an error's advice).

    Loopback gets its whole block (``127.0.0.0/8``), any other address itself.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "allow_networks: [<the network's CIDR block>]"
    if isinstance(ip, ipaddress.IPv4Address) and ip.is_loopback:
        return "allow_networks: [127.0.0.0/8]"
    return f"allow_networks: [{ip}/{ip.max_prefixlen}]"


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``), in its order.

    Args:
        host: a host name.
        port: the port (getaddrinfo wants one).

    Returns:
        The distinct addresses.

    Raises:
        OSError: when the name does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _host_key(host: str) -> str:
    return host.strip("[]").lower()


class _Guard:
    """Resolves a host and checks every address it resolves to."""

    def __init__(self, allow: Sequence[IPNetwork], resolver: Resolver) -> None:
        self.allow = tuple(allow)
        self.resolver = resolver

    async def vet(self, host: str, port: int) -> tuple[str, ...]:
        """Return the host's addresses; raise when any of them is refused.

        Errors carry no source (the caller adds it): BlockedAddressError for a
        refused address, FetchError when the name does not resolve.
        """
        bare = _host_key(host)
        if _is_ip_literal(bare):
            addresses = [bare]
        else:
            try:
                addresses = list(await self.resolver(bare, port))
            except (OSError, UnicodeError) as exc:
                raise FetchError("", f"cannot resolve {bare}: {_describe(exc)}") from exc
            if not addresses:
                raise FetchError("", f"cannot resolve {bare}: no addresses")
        for address in addresses:
            reason = address_refusal(address, self.allow)
            if reason is not None:
                shown = reason if address == bare else f"{bare} resolves to {reason}"
                raise BlockedAddressError(
                    "",
                    f"{shown}, refused (not in allow_networks; to fetch it, "
                    f"add {allow_hint(address)} to the config)",
                )
        return tuple(addresses)


def _describe(exc: BaseException) -> str:
    """One line for a low-level exception: its class, and its text when it has one."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
