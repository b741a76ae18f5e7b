"""RTP straight over aiortc's DTLS-SRTP transport, between two real aiortc peer connections on this machine.

This pins the aiortc internals the lean transport relies on (rtp_path.py): if an aiortc release moves them,
these tests fail rather than calls going silent.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtp import RtpPacket

from sipbridge.room.lean.rtp_path import RtpPath, report_sent


@pytest.fixture
async def connected_pair() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    for pc in (offerer, answerer):
        pc.addTransceiver("audio", direction="sendrecv")
    up = asyncio.Event()

    def check() -> None:
        if offerer.connectionState == answerer.connectionState == "connected":
            up.set()

    for pc in (offerer, answerer):
        pc.on("connectionstatechange", check)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    async with asyncio.timeout(30):
        await up.wait()
    yield offerer, answerer
    await offerer.close()
    await answerer.close()


def _sender(pc: RTCPeerConnection) -> RTCRtpSender:
    return pc.getTransceivers()[0].sender


async def test_our_packets_arrive_unprotected_at_the_other_side(
    connected_pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    offerer, answerer = connected_pair
    received: asyncio.Queue[tuple[RtpPacket, float]] = asyncio.Queue()
    outgoing = RtpPath(_sender(offerer).transport, lambda packet, arrival: None)
    RtpPath(_sender(answerer).transport, lambda packet, arrival: received.put_nowait((packet, arrival)))
    packet = struct.pack("!BBHII", 0x80, 96, 7, 960, 0xABCD) + b"opus-payload"
    assert outgoing.send(packet)
    async with asyncio.timeout(10):
        got, arrival = await received.get()
    assert (got.sequence_number, got.timestamp, got.ssrc, got.payload) == (7, 960, 0xABCD, b"opus-payload")
    assert arrival > 0


async def test_nothing_is_sent_once_the_connection_is_closed(
    connected_pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    offerer, _ = connected_pair
    path = RtpPath(_sender(offerer).transport, lambda packet, arrival: None)
    await offerer.close()
    assert not path.send(struct.pack("!BBHII", 0x80, 96, 1, 0, 1))


async def test_the_senders_reports_count_what_we_sent(
    connected_pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    sender = _sender(connected_pair[0])
    report_sent(sender, 12, 1200, 48000)
    (stats,) = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
    assert (stats.packetsSent, stats.bytesSent) == (12, 1200)
