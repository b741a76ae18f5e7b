"""``use_external_ip``: learn our public address with a STUN Binding request (RFC 5389).

The codec is sans-IO (bytes in, address out); ``discover_external_ip`` is the small asyncio wrapper that asks the
configured servers in turn.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import struct
from collections.abc import Sequence

log = logging.getLogger(__name__)

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
DEFAULT_STUN_SERVERS = ("stun.l.google.com:19302", "stun1.l.google.com:19302")


def binding_request(transaction_id: bytes) -> bytes:
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + transaction_id


def parse_binding_response(data: bytes, transaction_id: bytes) -> tuple[str, int] | None:
    """The reflexive (address, port) of a success response to our request, or None for anything else."""
    if len(data) < 20:
        return None
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if kind != BINDING_SUCCESS or cookie != MAGIC_COOKIE or data[8:20] != transaction_id:
        return None
    body = data[20 : 20 + length]
    plain: tuple[str, int] | None = None
    pos = 0
    while pos + 4 <= len(body):
        attr, size = struct.unpack("!HH", body[pos : pos + 4])
        value = body[pos + 4 : pos + 4 + size]
        pos += 4 + (size + 3) // 4 * 4
        if attr == XOR_MAPPED_ADDRESS:
            mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
            decoded = _address(value, mask)
            if decoded is not None:
                return decoded
        elif attr == MAPPED_ADDRESS:
            plain = _address(value, b"\x00" * 16)
    return plain


def _address(value: bytes, mask: bytes) -> tuple[str, int] | None:
    if len(value) < 8:
        return None
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ struct.unpack("!H", mask[:2])[0]
    size = 4 if family == 0x01 else 16 if family == 0x02 else 0
    raw = value[4 : 4 + size]
    if not size or len(raw) != size:
        return None
    address = bytes(a ^ b for a, b in zip(raw, mask[:size], strict=True))
    return str(ipaddress.ip_address(address)), port


class _Client(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.result: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        mapped = parse_binding_response(data, self.transaction_id)
        if mapped is not None and not self.result.done():
            self.result.set_result(mapped)


async def discover_external_ip(servers: Sequence[str] = DEFAULT_STUN_SERVERS, *, wait: float = 2.0) -> str | None:
    """Ask each ``host:port`` server in turn (three tries each); None when none answered."""
    loop = asyncio.get_running_loop()
    for server in servers:
        host, _, port_text = server.rpartition(":")
        host = host.strip("[]")
        client = _Client(os.urandom(12))
        transaction_id = client.transaction_id
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: client,  # noqa: B023 - used before the loop moves on
                remote_addr=(host, int(port_text)),
            )
        except (OSError, ValueError) as exc:
            log.warning("STUN server %s unusable: %s", server, exc)
            continue
        try:
            for _ in range(3):
                transport.sendto(binding_request(transaction_id))
                try:
                    address, _ = await asyncio.wait_for(asyncio.shield(client.result), wait / 3)
                    return address
                except TimeoutError:
                    continue
        finally:
            transport.close()
        log.warning("no STUN answer from %s", server)
    return None
