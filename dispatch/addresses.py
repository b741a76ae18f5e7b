"""Source-address filtering for inbound trunks (``allowed_addresses``).

An entry is an IP address (``203.0.113.7``, ``2001:db8::1``, ``[2001:db8::1]``), a CIDR block
(``203.0.113.0/24``, ``2001:db8::/32``) or a host name compared with the host of the caller's From
URI, as LiveKit accepts. LiveKit silently skips entries it cannot use (a URI, a comma-separated
list, ...); when every entry is unusable it admits *every* source. Here such a list admits no source,
and the API rejects unusable entries when a trunk is written (see docs/dispatch.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORBIDDEN_CHARACTERS = frozenset("()+*;, \t\n\r")


def mask_problem(mask: str) -> str | None:
    """Why ``mask`` cannot be used as an ``allowed_addresses`` entry, or None if it can."""
    if not mask:
        return "empty entry"
    if "://" in mask or any(c in _FORBIDDEN_CHARACTERS for c in mask):
        return f"{mask!r} is not an IP address, CIDR block or host name"
    if "/" in mask and _parse_network(mask) is None:
        return f"{mask!r} is not a valid CIDR block"
    return None


def parse_address(text: str) -> IPAddress | None:
    """The IP address in ``text`` (brackets and IPv4-mapped IPv6 accepted), or None."""
    try:
        address = ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_network(mask: str) -> IPNetwork | None:
    address, _, length = mask.partition("/")
    host = parse_address(address)
    if host is None or not length.isdigit():
        return None
    try:
        return ipaddress.ip_network(f"{host}/{length}", strict=False)
    except ValueError:
        return None


def _entry_admits(mask: str, source: IPAddress | None, from_host: str) -> bool:
    if from_host and mask.lower() == from_host.lower():
        return True
    if source is None:
        return False
    if "/" in mask:
        network = _parse_network(mask)
        return network is not None and source in network
    return parse_address(mask) == source


def address_allowed(masks: Sequence[str], source_ip: str, from_host: str) -> bool:
    """Whether a call from ``source_ip`` whose From URI names ``from_host`` passes ``masks``.

    An empty list admits everyone; otherwise one usable entry must match.
    """
    if not masks:
        return True
    source = parse_address(source_ip)
    usable = [mask for mask in masks if mask_problem(mask) is None]
    return any(_entry_admits(mask, source, from_host) for mask in usable)
