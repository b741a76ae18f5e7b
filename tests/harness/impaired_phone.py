"""A test phone on a bad line: its RTP towards the bridge loses packets and arrives with jitter.

Loss is random (seeded, so a run is reproducible) at the rate asked; each packet that is not lost leaves after a
random delay of up to ``jitter_ms``, so packets also arrive out of order now and then. The phone counts what it
sent and what it dropped: `induced_loss_pct` is the loss the bridge should measure.
"""

from __future__ import annotations

import asyncio
import random
import struct

from .rtp_phone import RtpPhone


class ImpairedRtpPhone(RtpPhone):
    def __init__(self, loss: float, jitter_ms: float, seed: int = 5) -> None:
        super().__init__()
        self.loss = loss
        self.jitter_ms = jitter_ms
        self._rng = random.Random(seed)
        self.sent = 0
        self.dropped = 0

    @property
    def induced_loss_pct(self) -> float:
        return 100.0 * self.dropped / self.sent if self.sent else 0.0

    def _send(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> None:
        """The packet is made now (its sequence number and timestamp), then lost or sent a little later."""
        assert self._transport is not None and self.remote is not None
        self._seq = (self._seq + 1) & 0xFFFF
        self.sent += 1
        if self._rng.random() < self.loss:
            self.dropped += 1
            return
        second = (0x80 if marker else 0) | payload_type
        packet = struct.pack("!BBHII", 0x80, second, self._seq, timestamp, self._ssrc) + payload
        delay = self._rng.uniform(0, self.jitter_ms / 1000)
        asyncio.get_running_loop().call_later(delay, self._transport.sendto, packet, self.remote)
