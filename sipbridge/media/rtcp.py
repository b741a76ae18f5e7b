"""RTCP bookkeeping for one stream: what we received (RFC 3550 §6.4.1 and appendix A.3), what we sent, and the
compound report (SR when we sent since the last report, else RR, plus SDES CNAME) built from both.

Packet layouts are aiortc's; the statistics are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""
SDES_CNAME = 1


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp of a Unix time."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


class ReceptionStats:
    """Statistics of the peer's stream, for our receiver report block."""

    def __init__(self) -> None:
        self._start(None)

    def _start(self, ssrc: int | None) -> None:
        """Statistics begin afresh for each source."""
        self.ssrc = ssrc
        self.packets = 0
        self._base: int | None = None
        self._max = 0
        self._cycles = 0
        self.jitter = 0.0
        self._transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._last_sr: int = 0
        self._last_sr_at: float | None = None

    def on_packet(self, ssrc: int, sequence: int, timestamp: int, arrival: float, clock_rate: int) -> None:
        if ssrc != self.ssrc:
            self._start(ssrc)
        self.packets += 1
        if self._base is None:
            self._base = self._max = sequence
        else:
            delta = (sequence - self._max) & 0xFFFF
            if delta < 0x8000:
                if sequence < self._max:
                    self._cycles += 0x10000
                self._max = sequence
        transit = arrival * clock_rate - timestamp
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit

    def on_sender_report(self, ntp: int, now: float) -> None:
        self._last_sr = (ntp >> 16) & 0xFFFFFFFF
        self._last_sr_at = now

    @property
    def last_sender_report_at(self) -> float | None:
        return self._last_sr_at

    @property
    def extended_highest(self) -> int:
        return self._cycles + self._max

    @property
    def cumulative_lost(self) -> int:
        if self._base is None:
            return 0
        return self.extended_highest - self._base + 1 - self.packets

    def report_block(self, now: float) -> RtcpReceiverInfo | None:
        if self.ssrc is None or self._base is None:
            return None
        expected = self.extended_highest - self._base + 1
        expected_interval = expected - self._expected_prior
        received_interval = self.packets - self._received_prior
        self._expected_prior, self._received_prior = expected, self.packets
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = 0 if self._last_sr_at is None else int((now - self._last_sr_at) * 65536)
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=max(-(1 << 23), min(self.cumulative_lost, (1 << 23) - 1)),
            highest_sequence=self.extended_highest & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=self._last_sr,
            dlsr=dlsr,
        )


@dataclass(frozen=True)
class PeerView:
    """What the peer's last receiver report block said about our stream (RFC 3550 §6.4.1)."""

    fraction_lost: float
    """Of our packets in the peer's last interval, 0..1."""
    cumulative_lost: int
    jitter: float
    """Interarrival jitter the peer measured, in timestamp units."""
    round_trip: float | None
    """Seconds, from the report's LSR/DLSR and when we sent that sender report; None before any SR was echoed."""


class SendStats:
    def __init__(self) -> None:
        self.packets = 0
        self.octets = 0
        self.last_timestamp = 0
        self._reported_packets = 0
        self._sr_sent: dict[int, float] = {}  # middle 32 bits of an SR's NTP time -> when we sent it
        self.peer_view: PeerView | None = None

    def on_sender_report_sent(self, ntp: int, now: float) -> None:
        self._sr_sent[(ntp >> 16) & 0xFFFFFFFF] = now
        while len(self._sr_sent) > 16:
            del self._sr_sent[next(iter(self._sr_sent))]

    def on_report_block(self, block: RtcpReceiverInfo, now: float) -> None:
        """The peer's view of our stream; the round trip is now minus when we sent the echoed SR minus DLSR."""
        sent_at = self._sr_sent.get(block.lsr) if block.lsr else None
        round_trip = None if sent_at is None else max(0.0, now - sent_at - block.dlsr / 65536)
        self.peer_view = PeerView(block.fraction_lost / 256, block.packets_lost, float(block.jitter), round_trip)

    def on_packet(self, payload_bytes: int, timestamp: int) -> None:
        self.packets += 1
        self.octets += payload_bytes
        self.last_timestamp = timestamp

    def sent_since_last_report(self) -> bool:
        sent = self.packets != self._reported_packets
        self._reported_packets = self.packets
        return sent


def build_report(
    ssrc: int, cname: str, sent: SendStats, received: ReceptionStats, now: float, unix_time: float, bye: bool = False
) -> bytes:
    """One compound RTCP packet: SR or RR first, then SDES with our CNAME, then BYE when leaving."""
    block = received.report_block(now)
    blocks = [block] if block is not None else []
    first: RtcpSrPacket | RtcpRrPacket
    if sent.sent_since_last_report():
        ntp = ntp_timestamp(unix_time)
        sent.on_sender_report_sent(ntp, now)
        info = RtcpSenderInfo(ntp, sent.last_timestamp, sent.packets, sent.octets)
        first = RtcpSrPacket(ssrc=ssrc, sender_info=info, reports=blocks)
    else:
        first = RtcpRrPacket(ssrc=ssrc, reports=blocks)
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(SDES_CNAME, cname.encode())])])
    packet = bytes(first) + bytes(sdes)
    if bye:
        packet += bytes(RtcpByePacket(sources=[ssrc]))
    return packet


def read_report(
    data: bytes, received: ReceptionStats, now: float, sent: SendStats | None = None, our_ssrc: int | None = None
) -> list[object]:
    """Parses a compound packet from the peer, noting its sender report for our LSR/DLSR fields and its report
    block about our stream (``our_ssrc``) into ``sent``."""
    packets = RtcpPacket.parse(data)
    for packet in packets:
        if isinstance(packet, RtcpSrPacket):
            received.on_sender_report(packet.sender_info.ntp_timestamp, now)
        if isinstance(packet, RtcpSrPacket | RtcpRrPacket) and sent is not None:
            for block in packet.reports:
                if block.ssrc == our_ssrc:
                    sent.on_report_block(block, now)
    return list(packets)
