"""The media half of a test phone: an RTP socket on loopback that talks G.711 µ-law and RFC 4733 like a handset.

The signalling half is a real SIP peer (sipp, see `sipp_phone`); its SDP points at this socket. The µ-law codec
here is the textbook G.711 algorithm, written independently of the bridge's own codecs so that a shared mistake
cannot cancel out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from typing import cast

import numpy as np
import numpy.typing as npt

from .audio import sine, sounds_like
from .ports import LOOPBACK, free_udp_port

RATE = 8000
FRAME = 160
PCMU_PT = 0
DTMF_PT = 101
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
_BIAS = 0x84
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """G.711 µ-law on 14-bit samples (the ITU reference: bias 33, segment end points 0x3F..0x1FFF)."""
    x = pcm.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), 8159) + 0x21
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    value = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    b = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (b >> 4) & 0x07
    magnitude = (((b & 0x0F) << 3) + _BIAS << exponent) - _BIAS
    return np.where(b & 0x80, -magnitude, magnitude).astype(np.int16)


class RtpPhone(asyncio.DatagramProtocol):
    """Sends a tone (or silence) every 20 ms to whoever sends it RTP, records the µ-law audio and digits it gets."""

    def __init__(self) -> None:
        self.port = free_udp_port()
        self.remote: tuple[str, int] | None = None
        self.received: list[npt.NDArray[np.int16]] = []
        self.audio_stamps: list[int] = []
        """The RTP timestamp of each packet of `received`, on the same clock as `digit_stamps`."""
        self.arrivals: list[float] = []
        """When each packet of `received` was read (``time.time()``): never earlier than it arrived."""
        self.digits: list[str] = []
        self.digit_stamps: list[int] = []
        """The RTP timestamp of each digit of `digits`: when the sender began it on its media clock (8 kHz), which
        shows pauses between digits whatever the delays on the way."""
        self._last_event_ts: int | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._tone: npt.NDArray[np.int16] = np.zeros(FRAME, dtype=np.int16)
        self._position = 0
        self._seq = random.randrange(1 << 16)
        self._timestamp = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)
        self._pending_dtmf: list[list[bytes]] = []
        self.muted = False
        """While True the phone sends no RTP at all (a silent phone: DTX, a dead line), its clock running on."""
        self._received_more = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(LOOPBACK, self.port))
        self._sender = asyncio.create_task(self._send_loop())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self.remote = self.remote or (addr[0], addr[1])
        payload_type = data[1] & 0x7F
        timestamp = struct.unpack("!I", data[4:8])[0]
        payload = data[12 + 4 * (data[0] & 0x0F) :]
        if payload_type == PCMU_PT:
            self.received.append(ulaw_decode(payload))
            self.audio_stamps.append(timestamp)
            self.arrivals.append(time.time())
            self._received_more.set()
        elif payload_type == DTMF_PT and len(payload) >= 4 and payload[1] & 0x80 and timestamp != self._last_event_ts:
            self._last_event_ts = timestamp  # one digit per event timestamp, however many end packets arrive
            names = {v: k for k, v in DTMF_EVENTS.items()}
            self.digits.append(names.get(payload[0], "?"))
            self.digit_stamps.append(timestamp)

    def play_tone(self, freq: float, dbfs: float = -20.0) -> None:
        """Loop one second of a sine (whole cycles for the integer frequencies tests use)."""
        self._tone = sine(freq, 1.0, RATE, dbfs)
        self._position = 0

    def play_noise(self, dbfs: float = -20.0, seed: int = 1) -> None:
        """Loop one second of white noise at `dbfs` RMS (a caller in a noisy place)."""
        noise = np.random.default_rng(seed).standard_normal(RATE)
        noise *= 32767 * 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))
        self._tone = np.clip(noise, -32768, 32767).astype(np.int16)
        self._position = 0

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """Queue an RFC 4733 event: updates every 20 ms, then three end packets, all on one timestamp."""
        event = DTMF_EVENTS[digit]
        steps = max(1, duration_ms // 20)
        packets = [struct.pack("!BBH", event, 10, (i + 1) * FRAME) for i in range(steps)]
        packets += [struct.pack("!BBH", event, 0x80 | 10, steps * FRAME)] * 3
        self._pending_dtmf.append(packets)

    async def _send_loop(self) -> None:
        next_at = time.monotonic()
        dtmf: list[bytes] = []
        dtmf_ts = 0
        first = False
        while True:
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if self.remote is None or self._transport is None:
                continue
            if self.muted:
                self._timestamp = (self._timestamp + FRAME) & 0xFFFFFFFF
                continue
            if not dtmf and self._pending_dtmf:
                dtmf = self._pending_dtmf.pop(0)
                dtmf_ts = self._timestamp
                first = True
            if dtmf:
                self._send(DTMF_PT, dtmf.pop(0), dtmf_ts, marker=first)
                first = False
            else:
                frame = self._tone[self._position : self._position + FRAME]
                self._position = (self._position + FRAME) % len(self._tone)
                self._send(PCMU_PT, ulaw_encode(frame), self._timestamp, marker=False)
            self._timestamp = (self._timestamp + FRAME) & 0xFFFFFFFF

    def _send(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> None:
        assert self._transport is not None and self.remote is not None
        self._seq = (self._seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, self._seq, timestamp, self._ssrc)
        self._transport.sendto(header + payload, self.remote)

    def heard(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self.received) if self.received else np.zeros(0, dtype=np.int16)

    async def sample(self, seconds: float, within: float = 30.0) -> npt.NDArray[np.int16]:
        """The next `seconds` of audio the phone hears (from now on)."""
        start = len(self.heard())
        await self.wait_heard(start / RATE + seconds, within)
        return self.heard()[start:]

    async def wait_heard(self, seconds: float, within: float = 30.0) -> npt.NDArray[np.int16]:
        deadline = time.monotonic() + within
        while len(self.heard()) < seconds * RATE:
            if time.monotonic() > deadline:
                raise AssertionError(f"the phone heard {len(self.heard()) / RATE:.1f} s of audio, not {seconds} s")
            await asyncio.sleep(0.05)
        return self.heard()

    def mark(self) -> int:
        """How many audio packets the phone has heard so far (for `wait_tone(..., since=)`)."""
        return len(self.received)

    async def wait_tone(self, freq: float, since: int = 0, within: float = 30.0) -> None:
        """Waits until the phone hears the `freq` Hz tone in the packets that arrive after packet `since`."""
        try:
            async with asyncio.timeout(within):
                while not _tail_sounds_like(self.received[since:], freq):
                    self._received_more.clear()
                    await self._received_more.wait()
        except TimeoutError:
            raise AssertionError(f"the phone did not hear {freq:g} Hz within {within:.0f} s") from None

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._transport is not None:
            self._transport.close()


def _tail_sounds_like(packets: list[npt.NDArray[np.int16]], freq: float) -> bool:
    """Whether the last half second of `packets` (20 ms each) is the `freq` Hz tone."""
    return len(packets) >= 25 and sounds_like(np.concatenate(packets[-25:]), RATE, freq)
