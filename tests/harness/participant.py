"""A real LiveKit participant for tests: plays a tone, records what it hears, sends and collects SIP DTMF.

It is the far end a phone call is bridged to: a test makes the phone side play one tone and this side
another, then checks each hears the other's frequency and level. It speaks to livekit-server through the
official rtc SDK, so what it sees is what any LiveKit client or agent would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np
from livekit import api, rtc

from .audio import Samples, sine, sounds_like

RATE = 48000


@dataclass(frozen=True)
class ReceivedDTMF:
    code: int
    digit: str
    sender_identity: str | None
    """Identity of the participant that sent it; None when a server SDK sent it."""


class TestParticipant:
    """One participant in `room` on the LiveKit server at `url`, joined with a token minted from the keys.

    Use as ``async with TestParticipant(...) as p``. Audio from every other participant is kept per identity
    as int16 mono at 48 kHz from the moment its track is subscribed.
    """

    __test__ = False  # a helper, not a pytest test class

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        room: str,
        identity: str,
        *,
        attributes: Mapping[str, str] | None = None,
        frame_ms: int = 20,
        listen: bool = True,
    ) -> None:
        self.url = url
        self.room_name = room
        self.identity = identity
        self.frame_ms = frame_ms
        self.listen = listen
        """False: subscribe to nobody (a speaker only, cheaper when a test only checks what others hear)."""
        token = (
            api.AccessToken(api_key, api_secret)
            .with_identity(identity)
            .with_name(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room))
        )
        if attributes:
            token = token.with_attributes(dict(attributes))
        self._token = token.to_jwt()
        self.room = rtc.Room()
        self.dtmf_received: list[ReceivedDTMF] = []
        self.speakers_seen: set[str] = set()
        """Identities the server has named active speakers (it reads the audio level RTP extension)."""
        self._heard: dict[str, list[Samples]] = {}
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tone_task: asyncio.Task[None] | None = None
        self._tone_source: rtc.AudioSource | None = None
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("sip_dtmf_received", self._on_sip_dtmf)
        self.room.on("participant_connected", lambda _participant: self._changed.set())
        self.room.on("track_published", lambda _publication, _participant: self._changed.set())
        self.room.on("active_speakers_changed", self._on_active_speakers)

    async def connect(self) -> None:
        await self.room.connect(self.url, self._token, rtc.RoomOptions(auto_subscribe=self.listen))

    async def disconnect(self) -> None:
        """Stop the tone and the recorders, then leave the room."""
        await self.stop_tone()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()

    async def publish_tone(self, freq: float, dbfs: float = -20.0) -> None:
        """Publish a microphone track playing an endless `freq` Hz sine at `dbfs`, until stop_tone()."""
        await self.stop_tone()
        source = rtc.AudioSource(RATE, 1, queue_size_ms=4 * self.frame_ms)
        track = rtc.LocalAudioTrack.create_audio_track(f"tone-{freq:g}", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tone_source = source
        self._tone_task = asyncio.create_task(self._play(source, freq, dbfs))

    async def stop_tone(self) -> None:
        if self._tone_task is not None:
            self._tone_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tone_task
            self._tone_task = None
        if self._tone_source is not None:
            await self._tone_source.aclose()
            self._tone_source = None

    async def _play(self, source: rtc.AudioSource, freq: float, dbfs: float) -> None:
        samples_per_frame = RATE * self.frame_ms // 1000
        # Each frame continues the previous one's phase, so the tone has no clicks at frame edges.
        phase_step = 2.0 * math.pi * freq * samples_per_frame / RATE
        phase = 0.0
        while True:
            frame = sine(freq, self.frame_ms / 1000, RATE, dbfs, phase)
            await source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, samples_per_frame))
            phase = (phase + phase_step) % (2.0 * math.pi)

    async def publish_dtmf(self, code: int, digit: str) -> None:
        """Send one SIP DTMF event to the room, as an agent pressing a key towards the phone does."""
        await self.room.local_participant.publish_dtmf(code=code, digit=digit)

    async def perform_rpc(self, identity: str, method: str, payload: str) -> str:
        """Calls `method` of participant `identity` as an agent does; rtc.RpcError when it answers with an error."""
        return await self.room.local_participant.perform_rpc(
            destination_identity=identity, method=method, payload=payload
        )

    async def wait_speaking(self, identity: str, within: float = 30.0) -> None:
        """Wait until the server has named `identity` an active speaker."""
        await self._wait_for(lambda: identity in self.speakers_seen, within, f"{identity} speaking")

    def heard(self, identity: str) -> Samples:
        """Everything recorded from `identity` so far (empty if nothing)."""
        chunks = self._heard.get(identity, [])
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def heard_seconds(self, identity: str) -> float:
        return sum(chunk.size for chunk in self._heard.get(identity, [])) / RATE

    async def wait_heard(self, identity: str, seconds: float, within: float = 30.0) -> Samples:
        """Wait until `seconds` of audio from `identity` were recorded, then return all of it."""
        await self._wait_for(
            lambda: self.heard_seconds(identity) >= seconds, within, f"{seconds} s of audio from {identity}"
        )
        return self.heard(identity)

    async def next_heard(self, identity: str, seconds: float, within: float = 30.0) -> Samples:
        """The next `seconds` of audio recorded from `identity`, from now on (a listening participant)."""
        start = sum(chunk.size for chunk in self._heard.get(identity, []))
        await self._wait_for(
            lambda: self.heard_seconds(identity) - start / RATE >= seconds, within, f"{seconds} s from {identity}"
        )
        return self.heard(identity)[start:]

    def mark(self, identity: str) -> int:
        """Where the recording of `identity` stands now, in frames (for `wait_tone(..., since=)`)."""
        return len(self._heard.get(identity, []))

    async def wait_tone(self, identity: str, freq: float, since: int = 0, within: float = 30.0) -> None:
        """Wait until `identity` is heard playing the `freq` Hz tone in the frames recorded after frame `since`."""

        def heard() -> bool:
            frames = self._heard.get(identity, [])[since:][-30:]  # the last half second or more
            return bool(frames) and sounds_like(np.concatenate(frames), RATE, freq)

        await self._wait_for(heard, within, f"{freq:g} Hz from {identity}")

    async def sample(self, identity: str, seconds: float, within: float = 30.0) -> Samples:
        """For a participant made with ``listen=False``: subscribe to `identity`'s audio, record `seconds` of it,
        and unsubscribe again, so a test with many rooms does not decode every one of them all the time."""

        def audio() -> list[rtc.RemoteTrackPublication]:
            remote = self.room.remote_participants.get(identity)
            if remote is None:
                return []
            return [p for p in remote.track_publications.values() if p.kind == rtc.TrackKind.KIND_AUDIO]

        await self._wait_for(lambda: bool(audio()), within, f"audio track of {identity}")
        start = sum(chunk.size for chunk in self._heard.get(identity, []))
        for publication in audio():
            publication.set_subscribed(True)
        try:
            await self._wait_for(
                lambda: self.heard_seconds(identity) - start / RATE >= seconds, within, f"{seconds} s from {identity}"
            )
        finally:
            for publication in audio():
                publication.set_subscribed(False)
        return self.heard(identity)[start:]

    async def wait_dtmf(self, count: int, within: float = 30.0) -> list[ReceivedDTMF]:
        """Wait until at least `count` DTMF events arrived; returns all received so far."""
        await self._wait_for(lambda: len(self.dtmf_received) >= count, within, f"{count} DTMF events")
        return list(self.dtmf_received)

    async def wait_participant(self, identity: str, within: float = 30.0) -> rtc.RemoteParticipant:
        """Wait until `identity` is in the room as this participant sees it.

        livekit-server 1.13 announces a participant that publishes nothing about 3 s after it joined (one
        that publishes, at once), so tests that only need the other side joined should not wait for this.
        """
        await self._wait_for(lambda: identity in self.room.remote_participants, within, f"participant {identity}")
        return self.room.remote_participants[identity]

    async def _wait_for(self, condition: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.identity} in {self.room_name}: no {what} within {within:.0f} s "
                f"(heard {sorted(self._heard)}, dtmf {self.dtmf_received})"
            ) from None

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1, frame_size_ms=self.frame_ms)
        task = asyncio.create_task(self._record(stream, participant.identity))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, stream: rtc.AudioStream, identity: str) -> None:
        chunks = self._heard.setdefault(identity, [])
        try:
            async for event in stream:
                chunks.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
                self._changed.set()
        finally:
            await stream.aclose()

    def _on_active_speakers(self, speakers: list[rtc.Participant]) -> None:
        self.speakers_seen.update(speaker.identity for speaker in speakers)
        self._changed.set()

    def _on_sip_dtmf(self, dtmf: rtc.SipDTMF) -> None:
        sender = dtmf.participant.identity if dtmf.participant is not None else None
        self.dtmf_received.append(ReceivedDTMF(dtmf.code, dtmf.digit, sender))
        self._changed.set()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()
