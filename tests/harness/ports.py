"""Free loopback ports for test servers.

A port is found by binding it and letting it go again, so another process may take it in between; the harness
keeps that window short by starting the server right after choosing its ports. Ports come from below Linux's
ephemeral range (32768-60999): there the kernel's own choices for outgoing sockets and port-0 binds cannot take a
port between our choosing it and the server binding it (livekit-server and baresip had lost theirs that way).
Ports are handed out walking the range from a random start, so a port this process handed out is not handed out
again before the walk has gone round the whole range.
"""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"

_RANGE_FLOOR = 20000
_RANGE_CEILING = 32000
_next = random.randrange(_RANGE_FLOOR, _RANGE_CEILING)
_BLOCK = 4
"""A single port keeps the three after it out of the walk too: peers bind beside it (RTCP on +1, sipp's video
RTP and RTCP on +2 and +3)."""


def _walk(count: int) -> int:
    """The first of the next ``count`` ports of the walk (wrapping round at the ceiling)."""
    global _next
    if _next + count > _RANGE_CEILING:
        _next = _RANGE_FLOOR
    start, _next = _next, _next + count
    return start


def _bindable(kind: socket.SocketKind, port: int, host: str) -> bool:
    with socket.socket(_family(host), kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _free_port(kinds: tuple[socket.SocketKind, ...], host: str, attempts: int = 500) -> int:
    """A port below the ephemeral range free for every kind, on ``host`` and on every interface (servers such
    as livekit-server bind them all)."""
    wildcard = "::" if ":" in host else "0.0.0.0"
    for _ in range(attempts):
        port = _walk(_BLOCK)
        if all(_bindable(kind, port, where) for kind in kinds for where in (host, wildcard)):
            return port
    raise RuntimeError(f"no free port on {host} after {attempts} attempts")


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now."""
    return _free_port((socket.SOCK_STREAM,), host)


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port nothing is bound to right now."""
    return _free_port((socket.SOCK_DGRAM,), host)


def free_tcp_udp_port(host: str = LOOPBACK) -> int:
    """A port number free for both TCP and UDP (SIP listens on both with one number)."""
    return _free_port((socket.SOCK_DGRAM, socket.SOCK_STREAM), host)


def free_udp_range(count: int, host: str = LOOPBACK, attempts: int = 200) -> int:
    """First port of `count` consecutive free UDP ports (an RTP range), below the ephemeral range."""
    if count < 1 or count > _RANGE_CEILING - _RANGE_FLOOR:
        raise ValueError(f"cannot find {count} consecutive ports")
    for _ in range(attempts):
        start = _walk(count)
        if all(_bindable(socket.SOCK_DGRAM, port, host) for port in range(start, start + count)):
            return start
    raise RuntimeError(f"no {count} consecutive free UDP ports on {host} after {attempts} attempts")


def free_rtp_range(pairs: int, host: str = LOOPBACK) -> tuple[int, int]:
    """First and last port of ``pairs`` free RTP/RTCP pairs starting on an even port (a `PortAllocator`'s range)."""
    start = free_udp_range(2 * pairs + 1, host)
    start += start % 2
    return start, start + 2 * pairs - 1
