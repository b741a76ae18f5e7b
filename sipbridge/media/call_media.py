"""Everything media for one call, in the shape the call flows and the room side want it.

``CallMedia`` ties an RTP session to the call's mixer and to the room: room participants are mixer inputs,
the caller hears the mix (or a prompt or tone while one plays), and the caller's audio comes out as frames at
the room's rate. The call flow creates one per call, keeps it for the call's life and closes it on every exit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np
import soxr

from sipbridge.media.codecs import Pcm
from sipbridge.media.mixer import Mixer, MixerInput
from sipbridge.media.ports import PortAllocator
from sipbridge.media.prompts import load_prompt
from sipbridge.media.resample import FrameResampler
from sipbridge.media.session import RtpSession
from sipbridge.media.stream import StreamConfig
from sipbridge.media.tones import FramePlayer
from sipbridge.media.udp import Address


class CallMedia:
    def __init__(self, session: RtpSession, room_rate: int | None = None, room_frame_ms: int = 20) -> None:
        """``room_rate``: the rate the room side wants the caller's audio at; None means the codec's rate,
        which needs no resampling here (the SDK's AudioSource resamples natively) and adds no soxr delay
        (35-55 ms for 8 -> 48 kHz at "LQ")."""
        self.session = session
        self._room_rate = room_rate
        self._room_frame_ms = room_frame_ms
        self.mixer: Mixer | None = None
        self.on_caller_audio: Callable[[Pcm], None] | None = None
        """The caller's audio, ``room_frame_ms`` at ``room_rate`` per call."""
        self._to_room: FrameResampler | None = None
        self._player: FramePlayer | None = None
        self._played: asyncio.Future[None] | None = None
        session.source = self._next_frame_for_caller
        session.sink = self._from_caller

    @classmethod
    async def open(
        cls,
        ports: PortAllocator,
        host: str,
        rtcp_mux: bool = False,
        room_rate: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> CallMedia:
        """Binds the call's RTP port (to put in the SDP) before media starts."""
        return cls(await RtpSession.open(ports, host, rtcp_mux=rtcp_mux, clock=clock), room_rate)

    @property
    def room_rate(self) -> int | None:
        """The rate of ``on_caller_audio`` frames (known once media has started when it follows the codec)."""
        return self._to_room.out_rate if self._to_room is not None else self._room_rate

    @property
    def local_port(self) -> int:
        return self.session.local_port

    def start(self, config: StreamConfig, remote: Address, remote_rtcp: Address | None = None) -> None:
        """Begins media once offer/answer has settled (again after a re-INVITE)."""
        self.session.start(config, remote, remote_rtcp)
        assert self.session.stream is not None
        rate, frame_ms = self.session.stream.codec.sample_rate, self.session.stream.ptime_ms
        if self.mixer is None:
            self.mixer = Mixer(rate, frame_ms=frame_ms)
        elif (self.mixer.sample_rate, self.mixer.frame_samples) != (rate, rate * frame_ms // 1000):
            self.mixer.change_rate(rate, frame_ms)  # participants keep their inputs
            self.stop_playing()
        if self._to_room is None or self._to_room.in_rate != rate:
            room_rate = self._room_rate or rate
            self._to_room = FrameResampler(rate, room_rate, room_rate * self._room_frame_ms // 1000)

    def add_participant(self, input_rate: int | None = None) -> MixerInput:
        """A room participant's audio towards the caller; push its frames as they arrive. Cheapest when the
        room side delivers at the codec's rate (``codec_rate``), so nothing is resampled here."""
        if self.mixer is None:
            raise RuntimeError("media has not started: the codec (and so the mixer's rate) is not known yet")
        return self.mixer.add_input(input_rate)

    def remove_participant(self, participant: MixerInput) -> None:
        if self.mixer is not None:
            self.mixer.remove_input(participant)

    @property
    def codec_rate(self) -> int | None:
        return self.mixer.sample_rate if self.mixer is not None else None

    def play(self, pcm: Pcm, sample_rate: int, loop: bool = False) -> asyncio.Future[None]:
        """Plays a sound to the caller in place of the mix; the future completes when it has been played out
        (a looped one only when stopped). A new sound replaces the one playing."""
        if self.mixer is None:
            raise RuntimeError("media has not started")
        if sample_rate != self.mixer.sample_rate:
            pcm = soxr.resample(pcm, sample_rate, self.mixer.sample_rate, quality="HQ").astype(np.int16)
        self.stop_playing()
        self._player = FramePlayer(pcm, self.mixer.frame_samples, loop=loop)
        self._played = asyncio.get_running_loop().create_future()
        return self._played

    def play_prompt(self, name: str) -> asyncio.Future[None]:
        """One of the PIN prompts (sipbridge.media.prompts), at the codec's rate."""
        if self.mixer is None:
            raise RuntimeError("media has not started")
        return self.play(load_prompt(name, self.mixer.sample_rate), self.mixer.sample_rate)

    def stop_playing(self) -> None:
        self._player = None
        if self._played is not None and not self._played.done():
            self._played.set_result(None)
        self._played = None

    def send_digits(self, digits: str, duration_ms: int = 100) -> None:
        self.session.send_digits(digits, duration_ms)

    async def close(self) -> None:
        self.stop_playing()
        await self.session.close()

    async def __aenter__(self) -> CallMedia:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _next_frame_for_caller(self) -> Pcm | None:
        if self._player is not None:
            frame = self._player.next_frame()
            if frame is not None:
                return frame
            self.stop_playing()
        return self.mixer.mix_frame() if self.mixer is not None else None

    def _from_caller(self, pcm: Pcm) -> None:
        if self.on_caller_audio is None or self._to_room is None:
            return
        for frame in self._to_room.push(pcm):
            self.on_caller_audio(frame)
