"""A call's SIP messages as a classic pcap file (Ethernet, IPv4/IPv6, UDP or TCP) that Wireshark, tshark and
sngrep open.

The packets are rebuilt from the trace, not captured: addresses, ports and times are the ones the endpoint
recorded, and messages that went over TLS (or a WebSocket) are written as plain TCP, since the trace holds their
decrypted text. TCP segments carry sequence numbers that run on per direction, so Wireshark reassembles them.
Secrets are already masked in the trace.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from sipbridge.inspector.trace import TracedMessage

LINKTYPE_ETHERNET = 1
_MAGIC = 0xA1B2C3D4
_OUR_MAC = bytes.fromhex("020000000001")
_PEER_MAC = bytes.fromhex("020000000002")
_TCP_SEGMENT = 32000
"""TCP payload per packet: a message larger than an IP packet holds is cut into several segments."""
Ip = ipaddress.IPv4Address | ipaddress.IPv6Address


def pcap_file(messages: Iterable[TracedMessage]) -> bytes:
    out = [struct.pack("<IHHiIII", _MAGIC, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)]
    sequence: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}
    for message in messages:
        src, dst = message.source, message.destination
        src_ip, dst_ip = _ip(src[0]), _ip(dst[0])
        if src_ip.version != dst_ip.version:  # one side v6: both as v6 (v4-mapped)
            src_ip, dst_ip = _as_v6(src_ip), _as_v6(dst_ip)
        macs = (_PEER_MAC + _OUR_MAC) if message.outgoing else (_OUR_MAC + _PEER_MAC)
        if message.transport == "UDP":
            segments = [_udp(src_ip, dst_ip, src[1], dst[1], message.data[:65000])]
            protocol = 17
        else:
            protocol = 6
            segments = []
            for start in range(0, max(1, len(message.data)), _TCP_SEGMENT):
                chunk = message.data[start : start + _TCP_SEGMENT]
                seq = sequence.get((src, dst), 1)
                ack = sequence.get((dst, src), 1)
                sequence[(src, dst)] = seq + len(chunk)
                segments.append(_tcp(src_ip, dst_ip, src[1], dst[1], seq, ack, chunk))
        for segment in segments:
            frame = macs + _ethertype(src_ip) + _ip_header(src_ip, dst_ip, protocol, len(segment)) + segment
            seconds = int(message.at)
            micros = round((message.at - seconds) * 1e6)
            out.append(struct.pack("<IIII", seconds, min(micros, 999999), len(frame), len(frame)))
            out.append(frame)
    return b"".join(out)


def _ip(host: str) -> Ip:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return ipaddress.IPv4Address("0.0.0.0")  # a host name that was never resolved here
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _as_v6(address: Ip) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        return address
    return ipaddress.IPv6Address("::ffff:" + str(address))


def _ethertype(address: Ip) -> bytes:
    return b"\x08\x00" if address.version == 4 else b"\x86\xdd"


def _ip_header(src: Ip, dst: Ip, protocol: int, length: int) -> bytes:
    if src.version == 4:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0x4000, 64, protocol, 0, src.packed, dst.packed)
        return header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return struct.pack("!IHBB16s16s", 6 << 28, length, protocol, 64, src.packed, dst.packed)


def _pseudo_header(src: Ip, dst: Ip, protocol: int, length: int) -> bytes:
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, protocol, length)
    return src.packed + dst.packed + struct.pack("!IxxxB", length, protocol)


def _udp(src: Ip, dst: Ip, sport: int, dport: int, payload: bytes) -> bytes:
    header = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    checksum = _checksum(_pseudo_header(src, dst, 17, 8 + len(payload)) + header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + payload


def _tcp(src: Ip, dst: Ip, sport: int, dport: int, seq: int, ack: int, payload: bytes) -> bytes:
    flags = 0x18  # PSH, ACK
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    checksum = _checksum(_pseudo_header(src, dst, 6, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
