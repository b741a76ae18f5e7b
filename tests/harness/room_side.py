"""The call's side of a room test: a sink that records what a RoomParticipant hears, a player for what it says,
and server-side views polled through the API.

`RecordingSink` stands where the media mixer stands in a call; its waits are woken by each frame delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, Unpack

import numpy as np
from livekit import api

from sipbridge.media.codecs import Pcm
from sipbridge.room import AudioSink, LiveKitCredentials, ParticipantSpec, RoomParticipant, TrackKey
from sipbridge.room.participant import ParticipantOptions

from .audio import Samples, sounds_like
from .processes import LiveKitServer

PHONE = "sip_+15105550100"
FAR_END = "agent"


class Participants(Protocol):
    """Makes participants on one room transport (`create_participant` with the transport given)."""

    def __call__(
        self,
        credentials: LiveKitCredentials,
        spec: ParticipantSpec,
        sink: AudioSink,
        **options: Unpack[ParticipantOptions],
    ) -> RoomParticipant: ...


class RecordingInput:
    def __init__(self, changed: asyncio.Event) -> None:
        self.frames: list[Pcm] = []
        self._changed = changed

    def push(self, pcm: Pcm) -> None:
        self.frames.append(pcm.copy())
        self._changed.set()


class RecordingSink:
    """An AudioSink that keeps every track's frames."""

    def __init__(self) -> None:
        self.inputs: dict[TrackKey, RecordingInput] = {}
        self.removed: list[TrackKey] = []
        self.changed = asyncio.Event()

    def add_input(self, key: TrackKey) -> RecordingInput:
        self.inputs[key] = RecordingInput(self.changed)
        self.changed.set()
        return self.inputs[key]

    def remove_input(self, key: TrackKey) -> None:
        self.removed.append(key)
        self.changed.set()

    def heard_from(self, identity: str) -> list[Pcm]:
        return [
            frame for key, rec in self.inputs.items() if key.participant_identity == identity for frame in rec.frames
        ]

    def mark(self, identity: str) -> int:
        """How many frames from `identity` were recorded so far (for `wait_tone(..., since=)`)."""
        return len(self.heard_from(identity))

    async def wait_for(self, condition: Callable[[], bool], within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def wait_tone(self, identity: str, freq: float, rate: int, since: int = 0, within: float = 30.0) -> None:
        """Waits until the `freq` Hz tone from `identity` is heard in the frames recorded after frame `since`."""

        def heard() -> bool:
            frames = self.heard_from(identity)[since:][-30:]  # the last half second or more
            return bool(frames) and sounds_like(np.concatenate(frames), rate, freq)

        try:
            await self.wait_for(heard, within)
        except TimeoutError:
            raise AssertionError(f"the call did not hear {freq:g} Hz from {identity} within {within:.0f} s") from None


def heard_frames(sink: RecordingSink, count: int) -> bool:
    return len(sink.heard_from(FAR_END)) >= count


async def eventually(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 100) -> None:
    """Polls a server-side view (the API has no push) every 0.1 s until `check` holds; fails after `attempts`."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw {what}")


async def participants_in(lkapi: api.LiveKitAPI, room: str) -> list[api.ParticipantInfo]:
    return list((await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))).participants)


def credentials_of(server: LiveKitServer) -> LiveKitCredentials:
    return LiveKitCredentials(server.ws_url, server.api_key, server.api_secret)


async def play(phone: RoomParticipant, tone: Samples, rate: int) -> None:
    """Pushes `tone` in 20 ms frames; the participant's bounded queue paces it at real time."""
    n = rate // 50
    for start in range(0, len(tone) - n + 1, n):
        await phone.push(tone[start : start + n])
