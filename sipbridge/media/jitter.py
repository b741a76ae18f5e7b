"""The receive-side jitter buffer: packets in, one packet (or a loss) out per packet interval.

Packets are ordered by their extended sequence number; duplicates and packets arriving after their turn are
dropped. Playout is pulled by the caller's clock, one ``pop`` per packet interval, so a missing packet is
declared lost only when a later one is already waiting, and the decoder side can conceal it. The depth (how
many packets are held before playout starts) adapts to the RFC 3550 interarrival jitter, grows after every
underrun caused by a late packet (not after a pause in a peer's silence suppression) and shrinks again by
dropping the oldest packet when the buffer has stayed deeper than needed.
A sequence jump far outside the window or a new SSRC restarts the buffer, so a re-INVITE, a transfer or a
peer restarting its stream recovers at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Gap(Enum):
    """What ``pop`` returns when it has no packet to give."""

    LOST = "lost"
    """A packet is missing while later ones wait: conceal one interval and go on."""
    EMPTY = "empty"
    """Nothing to play (not started, or drained): play silence or comfort audio."""


@dataclass(frozen=True)
class JitterPacket:
    sequence: int
    """Extended (unwrapped) sequence number."""
    timestamp: int
    payload: bytes
    marker: bool = False


MAX_SEQUENCE_JUMP = 1000
"""A sequence change larger than this (either way) is a new stream, not reordering."""


class JitterBuffer:
    def __init__(self, frame_ticks: int, min_depth: int = 1, max_depth: int = 15) -> None:
        """``frame_ticks``: RTP timestamp units per packet interval (160 for 20 ms at 8 kHz)."""
        self.frame_ticks = frame_ticks
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.target_depth = min_depth
        self.jitter = 0.0
        """RFC 3550 §6.4.1 interarrival jitter, in timestamp units."""
        self.lost = 0
        self.late_or_duplicate = 0
        self.underruns = 0
        """Times the buffer ran dry because a packet came late: each one deepens the buffer."""
        self.pauses = 0
        """Times it ran dry because the peer paused (silence suppression, a new talkspurt): no deepening."""
        self.resets = 0
        self.dropped_for_latency = 0
        self._packets: dict[int, JitterPacket] = {}
        self._ssrc: int | None = None
        self._highest: int | None = None
        self._next: int | None = None
        self._playing = False
        self._transit: float | None = None
        self._deep_pops = 0
        self._last_played_timestamp: int | None = None
        self._drained = False

    def __len__(self) -> int:
        return len(self._packets)

    def _restart(self) -> None:
        self._packets.clear()
        self._highest = None
        self._next = None
        self._playing = False
        self._transit = None
        self._last_played_timestamp = None
        self._drained = False
        self.resets += 1

    def _extend(self, sequence: int) -> int:
        """Unwraps a 16-bit sequence number next to the highest one seen."""
        if self._highest is None:
            return sequence
        candidate = (self._highest & ~0xFFFF) | sequence
        if candidate - self._highest > 0x8000:
            candidate -= 0x10000
        elif self._highest - candidate > 0x8000:
            candidate += 0x10000
        return candidate

    def push(
        self,
        ssrc: int,
        sequence: int,
        timestamp: int,
        payload: bytes,
        arrival: float,
        clock_rate: int,
        marker: bool = False,
    ) -> None:
        """Adds one received packet; ``arrival`` is a monotonic time in seconds."""
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                self._restart()
            self._ssrc = ssrc
        extended = self._extend(sequence)
        if self._highest is not None and abs(extended - self._highest) > MAX_SEQUENCE_JUMP:
            self._restart()
            extended = sequence
        if (self._next is not None and extended < self._next) or extended in self._packets:
            self.late_or_duplicate += 1
            return
        if self._drained:
            self._judge_drain(timestamp, marker)
        self._update_jitter(timestamp, arrival, clock_rate)
        self._packets[extended] = JitterPacket(extended, timestamp, payload, marker)
        self._highest = extended if self._highest is None else max(self._highest, extended)
        while len(self._packets) > self.max_depth * 2:
            self._drop_oldest()

    def _judge_drain(self, timestamp: int, marker: bool) -> None:
        """The first packet after the buffer ran dry tells why: the very next packet was late (deepen the
        buffer), or the peer paused and this one starts a new talkspurt (marker, or a timestamp jump)."""
        self._drained = False
        last = self._last_played_timestamp
        follows = last is not None and ((timestamp - last) & 0xFFFFFFFF) <= 2 * self.frame_ticks
        if follows and not marker:
            self.underruns += 1
            self.target_depth = min(self.max_depth, self.target_depth + 1)
        else:
            self.pauses += 1

    def _update_jitter(self, timestamp: int, arrival: float, clock_rate: int) -> None:
        transit = arrival * clock_rate - timestamp
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit
        wanted = 1 + math.ceil(2 * self.jitter / self.frame_ticks)
        self.target_depth = max(self.target_depth, min(self.max_depth, max(self.min_depth, wanted)))

    def _drop_oldest(self) -> None:
        oldest = min(self._packets)
        del self._packets[oldest]
        self._next = oldest + 1
        self.dropped_for_latency += 1

    def pop(self) -> JitterPacket | Gap:
        """The next packet to play, once per packet interval."""
        if not self._playing:
            if len(self._packets) < self.target_depth:
                return Gap.EMPTY
            self._playing = True
            if self._next is None:
                self._next = min(self._packets)
        assert self._next is not None
        if not self._packets:
            self._playing = False
            self._drained = True
            return Gap.EMPTY
        self._shrink_if_too_deep()
        packet = self._packets.pop(self._next, None)
        self._next += 1
        if packet is not None:
            self._last_played_timestamp = packet.timestamp
            return packet
        self.lost += 1
        waiting = min(self._packets)
        if waiting - self._next > self.max_depth:  # a long outage: resume at what is here, not its timeline
            self.lost += waiting - self._next
            self._next = waiting
        return Gap.LOST

    def _shrink_if_too_deep(self) -> None:
        """Drops one packet once the buffer has stayed deeper than the target plus two for a while: a second
        when it is just over, sooner the deeper it is."""
        excess = len(self._packets) - self.target_depth
        if excess > 2:
            self._deep_pops += 1
            if self._deep_pops >= 50 // excess:
                self._deep_pops = 0
                self._drop_oldest()
                wanted = 1 + math.ceil(2 * self.jitter / self.frame_ticks)
                self.target_depth = max(self.min_depth, min(self.target_depth - 1, self.max_depth), wanted)
        else:
            self._deep_pops = 0
