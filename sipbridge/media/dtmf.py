"""RFC 4733 telephone-events: the 4-byte payload, a receiver reporting each key press once, a sender plan.

Receiving is keyed by the event's RTP timestamp, which stays the same in every packet of one event: the
marker bit is not trusted because some carriers never set it, and the end packet is sent three times. A press
longer than the 16-bit duration field (~8 s at 8 kHz) continues in a new segment whose timestamp is the
old one plus its duration (RFC 4733 §2.5.1.3); that is still the same press and is not reported again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"
"""Event codes 0-15 of RFC 4733 §3.2, in order."""

END_PACKET_REPEATS = 3
"""How many times the end packet is sent (RFC 4733 §2.5.1.4 recommends three)."""

_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True)
class TelephoneEvent:
    """One RFC 4733 payload: event code, end bit, volume (0 to -63 dBm0, as a positive number), duration."""

    event: int
    end: bool
    volume: int
    duration: int
    """In RTP timestamp units since the event's start."""

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    def pack(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise ValueError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def _timestamp_after(a: int, b: int) -> bool:
    """True when 32-bit RTP timestamp ``a`` is later than ``b`` (serial-number arithmetic)."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


class TelephoneEventReceiver:
    """Turns a stream of telephone-event packets into key presses, each reported exactly once."""

    def __init__(self) -> None:
        self._timestamp: int | None = None
        self._event = -1
        self._duration = 0
        self._ended = True

    def receive(self, timestamp: int, payload: bytes) -> str | None:
        """Feed one packet; returns the digit when this packet starts a new press, else None."""
        event = TelephoneEvent.parse(payload)
        if self._timestamp is not None:
            if timestamp == self._timestamp:
                self._duration = max(self._duration, event.duration)
                self._ended = self._ended or event.end
                return None
            if not _timestamp_after(timestamp, self._timestamp):
                return None  # a late packet of an older event
            continues = (
                not self._ended
                and event.event == self._event
                and timestamp == (self._timestamp + self._duration) & 0xFFFFFFFF
            )
        else:
            continues = False
        self._timestamp, self._event, self._duration, self._ended = (
            timestamp,
            event.event,
            event.duration,
            event.end,
        )
        return None if continues else event.digit


@dataclass(frozen=True)
class OutgoingEventPacket:
    """One packet of a sent event: its payload, whether it carries the marker, its send slot (0, 1, ...)."""

    payload: bytes
    marker: bool
    slot: int


def telephone_event_packets(
    digit: str, duration_ms: int = 100, clock_rate: int = 8000, interval_ms: int = 20, volume: int = 10
) -> list[OutgoingEventPacket]:
    """The packets that send one key press: a first packet with the marker, a duration update every
    ``interval_ms``, then the end packet three times. All share the event's start timestamp, chosen by the
    sender. The three end packets go in consecutive slots, so a single loss does not hide the end."""
    event = DIGITS.index(digit.upper())
    step = clock_rate * interval_ms // 1000
    total = clock_rate * duration_ms // 1000
    if not 0 < total <= 0xFFFF:
        raise ValueError("a sent press must fit one event segment (up to 65535 timestamp units)")
    packets: list[OutgoingEventPacket] = []
    slot = 0
    duration = step
    while duration < total:
        payload = TelephoneEvent(event, False, volume, duration).pack()
        packets.append(OutgoingEventPacket(payload, marker=slot == 0, slot=slot))
        slot += 1
        duration += step
    end = TelephoneEvent(event, True, volume, total).pack()
    for _ in range(END_PACKET_REPEATS):
        packets.append(OutgoingEventPacket(end, marker=slot == 0, slot=slot))
        slot += 1
    return packets
