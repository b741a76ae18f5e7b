"""RTP in and out over the peer connection's DTLS-SRTP transport, bypassing aiortc's media pipeline.

aiortc's own senders and receivers encode and decode in an executor and a thread per track, resample every frame
and wake the event loop per frame; measured, that costs more than the rtc SDK. Here aiortc keeps ICE, DTLS and
SRTP, and nothing else touches the media. Received SRTP is taken where aioice hands a datagram on, before it is
queued for aiortc's DTLS task (a task wake-up per packet, as costly as the rest of the packet's handling), and
unprotected with the DTLS-negotiated keys right there; everything else (DTLS, SCTP, RTCP) goes aiortc's way.
Our packets are protected with the same keys and sent on the nominated ICE pair at once, synchronously, from the
media tick.

This relies on aiortc and aioice internals (aiortc 1.16: the DTLS transport's `_rx_srtp` and `_tx_srtp`, the
aioice connection's `data_received` and nominated pair, the sender's report counters);
tests/unit/room/test_room_lean_rtp_path.py pins them.
There is no TURN here (the peer connection has no ICE servers), so the nominated pair is always a plain UDP socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpSender
from aiortc.rtp import RtpPacket, is_rtcp

NTP_EPOCH_OFFSET = 2208988800
"""Seconds from the NTP epoch (1900) to the Unix epoch."""

PacketHandler = Callable[[RtpPacket, float], None]


class RtpPath:
    """`on_packet(packet, arrival)` gets every RTP packet received (arrival in `time.monotonic()` seconds);
    `send(packet)` sends one of ours."""

    def __init__(self, dtls: RTCDtlsTransport, on_packet: PacketHandler) -> None:
        self._dtls = dtls
        self._on_packet = on_packet
        connection = dtls.transport._connection
        self._queue_for_aiortc = connection.data_received
        connection.data_received = self._received  # type: ignore[method-assign]

    def _received(self, data: bytes, component: int) -> None:
        """Every datagram aioice takes that is not STUN."""
        srtp = self._dtls._rx_srtp
        if srtp is None or not 127 < data[0] < 192 or is_rtcp(data):
            self._queue_for_aiortc(data, component)
            return
        try:
            packet = RtpPacket.parse(srtp.unprotect(data))
        except (pylibsrtp.Error, ValueError):
            return  # not ours, or damaged: dropped as aiortc would drop it
        self._on_packet(packet, time.monotonic())

    @property
    def up(self) -> bool:
        """Whether DTLS is connected, so SRTP keys exist to send with."""
        return self._dtls.state == "connected"

    def send(self, packet: bytes) -> bool:
        """Protects and sends one RTP packet; False when the connection is not (or no longer) up."""
        dtls = self._dtls
        if dtls.state != "connected":
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return False
        pair.protocol.transport.sendto(dtls._tx_srtp.protect(packet), pair.remote_addr)
        return True


def report_sent(sender: RTCRtpSender, packets: int, payload_octets: int, rtp_timestamp: int) -> None:
    """Tells aiortc's sender what we sent for it, so the RTCP sender reports it keeps sending are true."""
    now = time.time() + NTP_EPOCH_OFFSET
    sender._RTCRtpSender__ntp_timestamp = int(now) << 32 | int((now % 1) * (1 << 32))  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count = packets  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count = payload_octets  # type: ignore[attr-defined]
