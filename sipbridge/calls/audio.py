"""One call's audio between the phone (RTP session) and the room (LiveKit participant).

Towards the phone: the mix of every other room participant, or a tone/prompt while one plays. Towards the room:
the caller's audio. The room side runs at a rate fixed when the call is set up (the codec's rate when it is known
then, so nothing is resampled in Python); when the codec's rate differs (a delayed offer, or a re-INVITE that
changes the codec) the audio is resampled here, in both directions, with soxr.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from sipbridge.media.codecs import Pcm
from sipbridge.media.mixer import Mixer, MixerInput
from sipbridge.media.resample import FrameResampler
from sipbridge.media.tones import FramePlayer
from sipbridge.room import AudioInput, TrackKey

FRAME_MS = 20
TO_ROOM_QUEUE_FRAMES = 10
"""Caller frames waiting for the room (200 ms); older ones are dropped rather than delaying speech."""


class FrameTaker(Protocol):
    """Where the caller's frames go (the call's room participant)."""

    async def push(self, frame: Pcm) -> None: ...


class CallAudio:
    """Implements the room's `AudioSink` (remote tracks into the mixer) and the RTP session's source and sink."""

    def __init__(self, room_rate: int) -> None:
        self.room_rate = room_rate
        self.mixer = Mixer(room_rate, FRAME_MS)
        self._inputs: dict[TrackKey, MixerInput] = {}
        self._codec_rate = room_rate
        self._to_phone: FrameResampler | None = None
        self._to_room: FrameResampler | None = None
        self._to_room_queue: asyncio.Queue[Pcm] = asyncio.Queue(maxsize=TO_ROOM_QUEUE_FRAMES)
        self._player: FramePlayer | None = None
        self._player_done: asyncio.Event | None = None

    # -- the room's AudioSink --------------------------------------------------------------------------------

    def add_input(self, key: TrackKey) -> AudioInput:
        mixer_input = self.mixer.add_input(self.room_rate)
        self._inputs[key] = mixer_input
        return mixer_input

    def remove_input(self, key: TrackKey) -> None:
        mixer_input = self._inputs.pop(key, None)
        if mixer_input is not None:
            self.mixer.remove_input(mixer_input)

    # -- the RTP session's source and sink -------------------------------------------------------------------

    def set_codec_rate(self, codec_rate: int) -> None:
        """The negotiated codec's sample rate (again after a re-INVITE that changed it)."""
        if codec_rate == self._codec_rate:
            return  # the resamplers (or their absence) already match this rate
        self._codec_rate = codec_rate
        codec_frame = codec_rate * FRAME_MS // 1000
        room_frame = self.room_rate * FRAME_MS // 1000
        same = codec_rate == self.room_rate
        self._to_phone = None if same else FrameResampler(self.room_rate, codec_rate, codec_frame)
        self._to_room = None if same else FrameResampler(codec_rate, self.room_rate, room_frame)

    def next_frame_for_phone(self) -> Pcm | None:
        """The RTP session's ``source``: a prompt frame while one plays, else the room's mix."""
        if self._player is not None:
            frame = self._player.next_frame()
            if frame is not None:
                return frame
            self._finish_playing()
        mix = self.mixer.mix_frame()
        if self._to_phone is None:
            return mix
        frames = self._to_phone.push(mix)
        return frames[0] if frames else None

    def from_phone(self, pcm: Pcm) -> None:
        """The RTP session's ``sink``: the caller's audio, queued for the room (oldest dropped when behind)."""
        for frame in [pcm] if self._to_room is None else self._to_room.push(pcm):
            self._queue_for_room(frame)

    def _queue_for_room(self, frame: Pcm) -> None:
        if self._to_room_queue.full():
            self._to_room_queue.get_nowait()
        self._to_room_queue.put_nowait(frame)

    async def play_to_room(self, pcm: Pcm) -> None:
        """Loops `pcm` (at the room rate) into the room on a steady 20 ms clock until cancelled: the dial tone
        an outbound call's participant plays while the phone rings."""
        frame_samples = self.room_rate * FRAME_MS // 1000
        player = FramePlayer(pcm[: len(pcm) - len(pcm) % frame_samples], frame_samples, loop=True)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while (frame := player.next_frame()) is not None:
            self._queue_for_room(frame)
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def pump_to_room(self, participant: FrameTaker) -> None:
        """Runs for the call's life: hands the caller's frames to the room, one SDK call per frame."""
        while True:
            frame = await self._to_room_queue.get()
            await participant.push(frame)

    def discard_caller_audio(self) -> None:
        """Drop caller audio queued so far (e.g. the PIN digits' tones before the room is joined)."""
        while not self._to_room_queue.empty():
            self._to_room_queue.get_nowait()

    # -- tones and prompts -----------------------------------------------------------------------------------

    def play(self, pcm: Pcm, loop: bool = False) -> asyncio.Event:
        """Play ``pcm`` (at the codec's rate) to the caller instead of the mix; the event is set when it ends."""
        self._finish_playing()
        frame_samples = self._codec_rate * FRAME_MS // 1000
        if loop and len(pcm) % frame_samples:
            pcm = pcm[: len(pcm) - len(pcm) % frame_samples]
        self._player = FramePlayer(np.ascontiguousarray(pcm, dtype=np.int16), frame_samples, loop=loop)
        self._player_done = asyncio.Event()
        return self._player_done

    async def play_and_wait(self, pcm: Pcm) -> None:
        await self.play(pcm).wait()

    def stop_playing(self) -> None:
        self._finish_playing()

    def _finish_playing(self) -> None:
        self._player = None
        if self._player_done is not None:
            self._player_done.set()
            self._player_done = None

    @property
    def codec_rate(self) -> int:
        return self._codec_rate
