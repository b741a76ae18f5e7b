"""What leaves the inspector: the pcap's packets carry the messages byte for byte with valid headers (TCP
sequence numbers running on per direction), a HEP v3 packet's chunks say what Homer needs, and the ladder draws one
arrow per message between one column per party, with everything from the wire escaped."""

from __future__ import annotations

import ipaddress
import struct

from inspector_sip_texts import CALL_ID, SDP, basic_call, request, response

from sipbridge.inspector.hep import encode
from sipbridge.inspector.ladder import ladder_svg, parties
from sipbridge.inspector.pcap import pcap_file
from sipbridge.inspector.sipscan import scan
from sipbridge.inspector.trace import TracedMessage

BRIDGE = ("192.0.2.1", 5060)


def traced(
    data: bytes, outgoing: bool, index: int, transport: str = "UDP", peer: tuple[str, int] = ("192.0.2.10", 5070)
) -> TracedMessage:
    facts = scan(data)
    assert facts is not None
    return TracedMessage(index, 1_700_000_000.25 + index, outgoing, transport, BRIDGE, peer, data, facts)


def packets(pcap: bytes) -> list[bytes]:
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", pcap[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    found, offset = [], 24
    while offset < len(pcap):
        _, _, captured, length = struct.unpack("<IIII", pcap[offset : offset + 16])
        assert captured == length
        found.append(pcap[offset + 16 : offset + 16 + captured])
        offset += 16 + captured
    return found


def internet_sum(data: bytes) -> int:
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_the_pcap_holds_each_message_in_a_valid_udp_or_tcp_packet() -> None:
    call = [traced(data, out, i) for i, (data, out) in enumerate(basic_call())]
    over_tcp = [
        traced(data, out, 10 + i, "TCP", ("192.0.2.20", 40000)) for i, (data, out) in enumerate(basic_call()[:3])
    ]
    frames = packets(pcap_file(call + over_tcp))
    assert len(frames) == 10
    for frame, message in zip(frames, call + over_tcp, strict=True):
        assert frame[12:14] == b"\x08\x00"
        ip = frame[14:34]
        assert internet_sum(ip) == 0xFFFF  # the IPv4 header checksum holds
        src, dst = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
        assert (str(src), str(dst)) == (message.source[0], message.destination[0])
        segment = frame[34:]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, ip[9], len(segment))
        assert internet_sum(pseudo + segment) == 0xFFFF  # so does UDP's or TCP's
        header = 8 if ip[9] == 17 else 20
        assert segment[header:] == message.data
        assert struct.unpack("!HH", segment[:4]) == (message.source[1], message.destination[1])
    tcp = [struct.unpack("!II", frame[38:46]) for frame in frames[7:]]
    first, second, third = tcp  # INVITE in, 100 and 180 out: each direction's sequence runs on
    assert first[0] == 1 and second[0] == 1 and third[0] == 1 + len(over_tcp[1].data)
    assert second[1] == 1 + len(over_tcp[0].data)  # the bridge acknowledges the INVITE


def test_ipv6_peers_get_ipv6_packets() -> None:
    message = traced(request("INVITE", 1, body=SDP), False, 0, peer=("2001:db8::10", 5070))
    frame = packets(pcap_file([message]))[0]
    assert frame[12:14] == b"\x86\xdd" and ipaddress.IPv6Address(frame[22:38]) == ipaddress.IPv6Address("2001:db8::10")
    assert frame[14 + 40 + 8 :] == message.data


def test_a_hep3_packet_carries_the_addresses_time_call_id_and_message() -> None:
    message = traced(request("INVITE", 1, body=SDP), False, 0)
    packet = encode(message, capture_id=2001, password="homer-key")
    assert packet[:4] == b"HEP3" and struct.unpack("!H", packet[4:6])[0] == len(packet)
    chunks, offset = {}, 6
    while offset < len(packet):
        vendor, kind, length = struct.unpack("!HHH", packet[offset : offset + 6])
        assert vendor == 0
        chunks[kind] = packet[offset + 6 : offset + length]
        offset += length
    assert chunks[1] == b"\x02" and chunks[2] == b"\x11"  # IPv4, UDP
    assert (
        chunks[3] == ipaddress.IPv4Address("192.0.2.10").packed and chunks[4] == ipaddress.IPv4Address(BRIDGE[0]).packed
    )
    assert struct.unpack("!H", chunks[7])[0] == 5070 and struct.unpack("!H", chunks[8])[0] == 5060
    assert struct.unpack("!I", chunks[9])[0] == 1_700_000_000 and struct.unpack("!I", chunks[10])[0] == 250000
    assert chunks[11] == b"\x01" and struct.unpack("!I", chunks[12])[0] == 2001  # SIP, capture agent 2001
    assert chunks[14] == b"homer-key" and chunks[17] == CALL_ID.encode() and chunks[15] == message.data


def test_the_ladder_has_a_column_per_party_and_an_arrow_per_message() -> None:
    messages = [traced(data, out, i) for i, (data, out) in enumerate(basic_call())]
    svg = ladder_svg(messages)
    assert parties(messages) == ["192.0.2.10:5070", "sipbridge"]
    assert svg.count('class="arrow"') == 7 and svg.count('href="#m') == 7
    assert ">INVITE (SDP)<" in svg and ">180 Ringing<" in svg and ">200 OK<" in svg


def test_hostile_text_from_the_wire_is_escaped() -> None:
    hostile = response(200, "<script>alert(1)</script>", "INVITE", 1)  # a peer's reason phrase
    facts = scan(hostile)
    assert facts is not None
    svg = ladder_svg([TracedMessage(0, 0.0, False, "UDP", BRIDGE, ("192.0.2.10", 5070), hostile, facts)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
