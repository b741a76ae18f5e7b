"""HEP v3 (the Homer Encapsulation Protocol) export: every traced SIP message, masked, to a Homer collector.

`encode` builds one HEP3 packet: the ``HEP3`` magic and total length, then chunks of (vendor 0, type, length,
value) for the addresses, ports, time, protocol (SIP), capture agent ID, optional password, the message, and its
Call-ID as correlation ID. `HepExporter` sends them over UDP, one datagram per message, never waiting: a collector
that is down costs nothing but the datagrams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct

from sipbridge.config import HepTarget
from sipbridge.inspector.trace import CallTrace, TracedMessage

log = logging.getLogger(__name__)

_IP_FAMILY, _IP_PROTOCOL, _IPV4_SRC, _IPV4_DST, _IPV6_SRC, _IPV6_DST = 1, 2, 3, 4, 5, 6
_SRC_PORT, _DST_PORT, _SECONDS, _MICROSECONDS, _PROTOCOL_TYPE, _CAPTURE_ID = 7, 8, 9, 10, 11, 12
_AUTH_KEY, _PAYLOAD, _CORRELATION_ID = 14, 15, 17
PROTOCOL_SIP = 1
MAX_DATAGRAM = 65507


def _chunk(kind: int, value: bytes) -> bytes:
    return struct.pack("!HHH", 0, kind, 6 + len(value)) + value


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return ipaddress.IPv4Address("0.0.0.0")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def encode(message: TracedMessage, capture_id: int, password: str = "") -> bytes:
    src, dst = message.source, message.destination
    src_ip, dst_ip = _address(src[0]), _address(dst[0])
    if src_ip.version != dst_ip.version:
        src_ip = ipaddress.IPv6Address(f"::ffff:{src_ip}") if src_ip.version == 4 else src_ip
        dst_ip = ipaddress.IPv6Address(f"::ffff:{dst_ip}") if dst_ip.version == 4 else dst_ip
    v4 = src_ip.version == 4
    seconds = int(message.at)
    chunks = [
        _chunk(_IP_FAMILY, bytes([socket.AF_INET if v4 else 10])),  # HEP's family numbers are Linux's
        _chunk(_IP_PROTOCOL, bytes([17 if message.transport == "UDP" else 6])),
        _chunk(_IPV4_SRC if v4 else _IPV6_SRC, src_ip.packed),
        _chunk(_IPV4_DST if v4 else _IPV6_DST, dst_ip.packed),
        _chunk(_SRC_PORT, struct.pack("!H", src[1])),
        _chunk(_DST_PORT, struct.pack("!H", dst[1])),
        _chunk(_SECONDS, struct.pack("!I", seconds)),
        _chunk(_MICROSECONDS, struct.pack("!I", min(999999, int((message.at - seconds) * 1e6)))),
        _chunk(_PROTOCOL_TYPE, bytes([PROTOCOL_SIP])),
        _chunk(_CAPTURE_ID, struct.pack("!I", capture_id)),
    ]
    if password:
        chunks.append(_chunk(_AUTH_KEY, password.encode()))
    chunks.append(_chunk(_CORRELATION_ID, message.facts.call_id.encode()))
    chunks.append(_chunk(_PAYLOAD, message.data))
    body = b"".join(chunks)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


class _Quiet(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        log.debug("HEP: %s", exc)


class HepExporter:
    """Sends each traced message to ``target``; a `TraceBook` message listener."""

    def __init__(self, target: HepTarget, capture_id: int, password: str = "") -> None:
        self.target = target
        self.capture_id = capture_id
        self.password = password
        self.sent = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Resolves the collector once and opens the socket (a name that does not resolve stops start-up)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        remote = (str(address[0]), int(address[1]))
        self._transport, _ = await loop.create_datagram_endpoint(_Quiet, remote_addr=remote, family=family)

    def __call__(self, trace: CallTrace, message: TracedMessage) -> None:
        packet = encode(message, self.capture_id, self.password)
        if self._transport is not None and len(packet) <= MAX_DATAGRAM:
            self._transport.sendto(packet)
            self.sent += 1

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
