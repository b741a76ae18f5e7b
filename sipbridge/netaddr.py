"""Address helpers shared by the SIP and media layers (a leaf: it imports nothing of sipbridge)."""

from __future__ import annotations

import fcntl
import functools
import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915


@functools.lru_cache(maxsize=1024)
def is_private_address(host: str) -> bool:
    """Whether ``host`` is a private (RFC 1918, unique local), link-local or shared (CGNAT) address: one a peer
    behind NAT puts in its SDP without knowing its public one."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return (address.is_private and not address.is_loopback) or address in ipaddress.ip_network("100.64.0.0/10")


@functools.lru_cache(maxsize=1024)
def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address (a host name must be resolved before a packet can go to it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def interface_addresses() -> list[str]:
    """The IPv4 addresses of this machine's network interfaces (SIOCGIFADDR on each; Linux)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue  # an interface without an IPv4 address
            found.append(socket.inet_ntoa(reply[20:24]))
    return found


def address_in(network: str, candidates: list[str]) -> str | None:
    """The first of ``candidates`` inside ``network`` (a CIDR block), or None."""
    block = ipaddress.ip_network(network, strict=False)
    return next((a for a in candidates if ipaddress.ip_address(a) in block), None)
