"""The caller's audio on its way into the room: a short paced queue, Opus at the codec's rate, our RTP packets.

`put()` queues a frame (waiting while the queue is full, so a producer faster than real time is paced as the SDK's
source paces it); each tick of the shared cadence takes at most one frame, encodes it and makes it a packet. A
tick with nothing queued sends nothing at all: a ringing call, or a caller on hold, costs no encoding. Time still
passes in the RTP timestamp, and the next packet carries the marker of a new talkspurt.

Packets carry the two header extensions livekit-server asked for in its answer: `sdes:mid` and the RFC 6464 audio
level (computed here, in -dBov, from the frame's RMS), which its speaker detection reads.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct

import numpy as np

from sipbridge.media.codecs import OpusCodec, Pcm
from sipbridge.room.lean.negotiated import SendRoute

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""The PCM rates libopus encodes without resampling."""
OPUS_COMPLEXITY = 5
"""libopus encoder complexity: about half the CPU of its default (10), the same narrowband speech quality."""
QUEUE_FRAMES = 5
"""Frames that may wait for their tick (100 ms): absorbs the caller's RTP jitter, bounds the delay added."""
FRAME_TICKS = 960
"""RTP timestamp units per 20 ms packet: Opus's RTP clock is 48 kHz whatever the audio's rate."""
SILENCE_LEVEL = 127

_HEADER = struct.Struct("!BBHII")
_EXTENSION_PROFILE = b"\xbe\xde"  # RFC 8285 one-byte header extensions


def audio_level(frame: Pcm) -> int:
    """The RFC 6464 level of a frame: its RMS in -dBov (0 is a full-scale square wave), 127 for silence."""
    mean_square = float(np.dot(frame.astype(np.float32), frame.astype(np.float32))) / max(len(frame), 1)
    if mean_square < 1.0:
        return SILENCE_LEVEL
    return min(SILENCE_LEVEL, max(0, round(-10.0 * math.log10(mean_square / 32768.0**2))))


class RtpPacketizer:
    """Our RTP packets: sequence numbers, the marker, and the negotiated header extensions."""

    def __init__(self, route: SendRoute, rng: random.Random) -> None:
        self.route = route
        self._sequence = rng.getrandbits(16)
        mid = route.mid.encode()
        self._mid_element = (
            b"" if route.mid_extension is None else bytes([route.mid_extension << 4 | len(mid) - 1]) + mid
        )

    def packet(self, payload: bytes, timestamp: int, marker: bool, level: int) -> bytes:
        route = self.route
        elements = self._mid_element
        if route.audio_level_extension is not None:
            elements += bytes([route.audio_level_extension << 4, level])
        first = 0x80 | (0x10 if elements else 0)
        header = _HEADER.pack(
            first, (0x80 if marker else 0) | route.payload_type, self._sequence, timestamp, route.ssrc
        )
        self._sequence = (self._sequence + 1) & 0xFFFF
        if not elements:
            return header + payload
        elements += b"\x00" * (-len(elements) % 4)
        return header + _EXTENSION_PROFILE + struct.pack("!H", len(elements) // 4) + elements + payload


class CallerAudio:
    """Frames in at `sample_rate` (20 ms), at most one packet out per tick once a route is known."""

    def __init__(self, sample_rate: int, rng: random.Random | None = None) -> None:
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"the lean transport publishes {OPUS_RATES} Hz audio, not {sample_rate}")
        self._rng = rng or random.SystemRandom()
        self._encoder = OpusCodec(sample_rate, OPUS_COMPLEXITY)
        self.frame_samples = self._encoder.encoder_frame_samples
        self._queue: asyncio.Queue[Pcm] = asyncio.Queue(QUEUE_FRAMES)
        self._packetizer: RtpPacketizer | None = None
        self._timestamp = self._rng.getrandbits(32)
        self._talkspurt_start = True
        self._closed = False
        self.packets = 0
        self.payload_octets = 0
        self.last_timestamp = self._timestamp
        """RTP timestamp of the last packet made (for sender reports)."""

    def set_route(self, route: SendRoute) -> None:
        """What the latest answer settled for our track (the same mid and SSRC every time)."""
        if self._packetizer is None or self._packetizer.route != route:
            self._packetizer = RtpPacketizer(route, self._rng)

    async def put(self, frame: Pcm) -> None:
        """Queues one frame; waits while the queue is full. Dropped once closed."""
        if len(frame) != self.frame_samples:
            raise ValueError(f"frames of {self.frame_samples} samples expected, not {len(frame)}")
        if not self._closed:
            await self._queue.put(frame)

    def next_packet(self) -> bytes | None:
        """The packet of this tick's frame slot, or None when no frame waits (or no route is known yet)."""
        timestamp = self._timestamp
        self._timestamp = (self._timestamp + FRAME_TICKS) & 0xFFFFFFFF
        if self._queue.empty() or self._packetizer is None:
            self._talkspurt_start = True
            return None
        frame = self._queue.get_nowait()
        payload = self._encoder.encode(frame)
        packet = self._packetizer.packet(payload, timestamp, self._talkspurt_start, audio_level(frame))
        self._talkspurt_start = False
        self.packets += 1
        self.payload_octets += len(payload)
        self.last_timestamp = timestamp
        return packet

    def skip(self, slots: int) -> None:
        """Slots the cadence gave up (the loop ran late): time moves on as if nothing was sent in them."""
        for _ in range(slots):
            self._timestamp = (self._timestamp + FRAME_TICKS) & 0xFFFFFFFF
            if not self._queue.empty():
                self._queue.get_nowait()
            self._talkspurt_start = True

    def close(self) -> None:
        """Drops what waits and wakes any `put()` waiting for room; later frames are dropped."""
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
