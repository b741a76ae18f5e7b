"""Free loopback ports for test servers.

A port is found by binding it and letting it go again, so another process may take it in between; the harness
keeps that window short by starting the server right after choosing its ports.
"""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"

# Below Linux's default ephemeral range (32768-60999), so the kernel's own choices for outgoing sockets
# and port-0 binds rarely land in a range we picked.
_RANGE_FLOOR = 20000
_RANGE_CEILING = 32000


def _bindable(kind: socket.SocketKind, port: int, host: str) -> bool:
    with socket.socket(_family(host), kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _kernel_port(kind: socket.SocketKind, host: str) -> int:
    with socket.socket(_family(host), kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now."""
    return _kernel_port(socket.SOCK_STREAM, host)


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port nothing is bound to right now."""
    return _kernel_port(socket.SOCK_DGRAM, host)


def free_listen_port(kind: socket.SocketKind, host: str = "0.0.0.0", attempts: int = 200) -> int:
    """A port below the ephemeral range that nothing holds on `host` (all interfaces by default): for a server that
    keeps its port for long (and binds it again when restarted), where a kernel-chosen port could meanwhile be
    taken by any process's outgoing socket."""
    for _ in range(attempts):
        port = random.randrange(_RANGE_FLOOR, _RANGE_CEILING)
        if _bindable(kind, port, host):
            return port
    raise RuntimeError(f"no free port on {host} below the ephemeral range after {attempts} attempts")


def free_tcp_udp_port(host: str = LOOPBACK, attempts: int = 50) -> int:
    """A port number free for both TCP and UDP (SIP listens on both with one number)."""
    for _ in range(attempts):
        port = free_udp_port(host)
        if _bindable(socket.SOCK_STREAM, port, host):
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host} after {attempts} attempts")


def free_udp_range(count: int, host: str = LOOPBACK, attempts: int = 200) -> int:
    """First port of `count` consecutive free UDP ports (an RTP range), below the ephemeral range."""
    if count < 1 or count > _RANGE_CEILING - _RANGE_FLOOR:
        raise ValueError(f"cannot find {count} consecutive ports")
    for _ in range(attempts):
        start = random.randrange(_RANGE_FLOOR, _RANGE_CEILING - count)
        if all(_bindable(socket.SOCK_DGRAM, start + offset, host) for offset in range(count)):
            return start
    raise RuntimeError(f"no {count} consecutive free UDP ports on {host} after {attempts} attempts")
