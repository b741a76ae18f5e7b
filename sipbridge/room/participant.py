"""One phone call as one LiveKit participant: the caller's audio out, everyone else's audio in, DTMF both ways,
`sip.callStatus`, and the reason the participant left.

All of it goes through the livekit rtc SDK, whose every call crosses its FFI and costs tens of microseconds, so
the hot paths make one FFI call per 20 ms frame per direction: `push()` captures each frame whole, and each remote
track is read by an FFI audio stream that already delivers mono frames at the mixer's rate and frame size. Both
hot paths go through the FfiRouter (ffi_router.py), so their events cost O(1) however many calls share the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Literal, Self

from livekit import rtc

from sipbridge.media.codecs import Pcm
from sipbridge.room.dtmf import dtmf_code, dtmf_digit
from sipbridge.room.endings import EndReason, end_reason
from sipbridge.room.ffi_router import AudioTrackReader, FfiRouter, capture_frame
from sipbridge.room.processing import MediaProcessor
from sipbridge.room.sink import AudioSink, TrackKey
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

logger = logging.getLogger(__name__)

FRAME_MS = 20
"""Frame length in both directions."""

SOURCE_QUEUE_MS = 100
"""Audio the SDK's source may hold ahead of playout: absorbs RTP arrival jitter, bounds added latency."""

CALL_STATUS_ATTRIBUTE = "sip.callStatus"

CallStatus = Literal["dialing", "ringing", "automation", "active", "hangup"]
"""The values LiveKit documents for `sip.callStatus`."""

DtmfHandler = Callable[[str], None]


class RoomConnectError(Exception):
    """The participant could not join the room (server unreachable, token refused, publish failed)."""


class RoomParticipant:
    """A call's participant of kind SIP in one room.

    `join()` connects and publishes the caller's microphone track; from then on `push()` takes the caller's
    audio, and every remote audio track goes to `sink` as it is subscribed. Ended by `leave()` or by the room
    (see `wait_ended()`); when the room ends it, everything is released by itself, and `leave()` waits for that.
    Create it on the event loop that will run it.
    """

    def __init__(
        self,
        credentials: LiveKitCredentials,
        spec: ParticipantSpec,
        sink: AudioSink,
        *,
        publish_rate: int = 48000,
        subscribe_rate: int = 48000,
        processor: MediaProcessor | None = None,
        on_dtmf: DtmfHandler | None = None,
        connect_timeout: float = 10.0,
        token: str = "",
    ) -> None:
        self.credentials = credentials
        self.spec = spec
        self.publish_rate = publish_rate
        """Rate of the frames `push()` takes (any rate; the SDK resamples towards Opus)."""
        self.subscribe_rate = subscribe_rate
        """Rate of the frames handed to `sink`."""
        self._sink = sink
        self._processor = processor
        self._on_dtmf = on_dtmf
        self._connect_timeout = connect_timeout
        self._token = token
        """A join token minted elsewhere (livekit-server's, in cluster mode); empty: minted from `credentials`."""
        self._room = rtc.Room()
        self._source: rtc.AudioSource | None = None
        self._router = FfiRouter.get()
        self._readers: dict[TrackKey, AudioTrackReader] = {}
        self._remote_audio = asyncio.Event()
        self._ended: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        self._release: asyncio.Future[None] | None = None
        self._room.on("track_subscribed", self._on_track_subscribed)
        self._room.on("track_unsubscribed", self._on_track_unsubscribed)
        self._room.on("sip_dtmf_received", self._on_sip_dtmf)
        self._room.on("disconnected", self._on_disconnected)

    @property
    def room(self) -> rtc.Room:
        """The SDK room, for what this class does not wrap (read-only use, please)."""
        return self._room

    @property
    def sid(self) -> str:
        """The participant ID the server gave us (empty before `join()`)."""
        return str(self._room.local_participant.sid) if self._room.isconnected() else ""

    async def join(self) -> None:
        """Connects and publishes the caller's track; RoomConnectError (with nothing left allocated) on failure."""
        token = self._token or sip_participant_token(self.credentials, self.spec)
        options = rtc.RoomOptions(auto_subscribe=True, connect_timeout=self._connect_timeout)
        try:
            await self._room.connect(self.credentials.ws_url, token, options)
            self._source = rtc.AudioSource(self.publish_rate, 1, queue_size_ms=SOURCE_QUEUE_MS)
            track = rtc.LocalAudioTrack.create_audio_track("phone", self._source)
            publish = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await self._room.local_participant.publish_track(track, publish)
        except Exception as exc:
            await self.leave()
            raise RoomConnectError(
                f"cannot join room {self.spec.room!r} at {self.credentials.ws_url} as {self.spec.identity!r}: {exc}"
            ) from exc
        except BaseException:
            await self.leave()
            raise

    async def push(self, frame: Pcm) -> None:
        """Sends one frame of the caller's audio (mono int16 at `publish_rate`, 20 ms) through the processor.

        Waits only while the SDK's source is full, that is when frames come faster than real time. After the
        participant left, frames are dropped.
        """
        source = self._source
        if source is None or self._ended.done():
            return
        if self._processor is not None:
            frame = self._processor.process(frame)
        await capture_frame(self._router, source, frame)

    async def send_dtmf(self, digit: str) -> None:
        """Publishes one digit from the phone as SIP DTMF (agents see `sip_dtmf_received`)."""
        await self._room.local_participant.publish_dtmf(code=dtmf_code(digit), digit=digit.upper())

    async def set_call_status(self, status: CallStatus) -> None:
        await self.update_attributes({CALL_STATUS_ATTRIBUTE: status})

    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        """Sets these attributes of ours, leaving the others as they are (an empty value removes one)."""
        await self._room.local_participant.set_attributes(dict(attributes))

    async def wait_remote_audio(self) -> None:
        """Returns once a remote audio track has been subscribed (at once if one already was).

        The inbound flow answers the call at that moment: someone, typically the agent, is there to talk.
        """
        await self._remote_audio.wait()

    async def wait_ended(self) -> EndReason:
        """Returns why the participant left the room, once it has."""
        return await asyncio.shield(self._ended)

    @property
    def end_reason(self) -> EndReason | None:
        return self._ended.result() if self._ended.done() else None

    async def leave(self) -> None:
        """Leaves the room (if still in it) and waits until the source, the streams and the processor are
        released. Idempotent; safe after the room ended the call (which starts the release by itself)."""
        self._end(EndReason.LEFT)
        await asyncio.shield(self._start_release())

    def _start_release(self) -> asyncio.Future[None]:
        if self._release is None:
            self._release = asyncio.ensure_future(self._release_all())
        return self._release

    async def _release_all(self) -> None:
        for key in list(self._readers):
            self._stop_reading(key)
        if self._source is not None:
            await self._source.aclose()
            self._source = None
        await self._room.disconnect()
        if self._processor is not None:
            self._processor.close()

    def _end(self, reason: EndReason) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)
            logger.info("participant %s left room %s: %s", self.spec.identity, self.spec.room, reason.value)

    def _on_disconnected(self, reason: int) -> None:
        """The room ended the call (or our own leave() did): report why, and let go of everything."""
        self._end(end_reason(reason))
        self._start_release()

    def _on_track_subscribed(
        self, track: rtc.Track, _publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or self._release is not None:
            return
        key = TrackKey(participant.identity, track.sid)
        self._stop_reading(key)  # a resubscription replaces the old reader
        audio_input = self._sink.add_input(key)
        self._readers[key] = AudioTrackReader(
            self._router, track, self.subscribe_rate, FRAME_MS, audio_input.push, lambda: self._stop_reading(key)
        )
        self._remote_audio.set()

    def _on_track_unsubscribed(
        self, track: rtc.Track, _publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._stop_reading(TrackKey(participant.identity, track.sid))

    def _stop_reading(self, key: TrackKey) -> None:
        reader = self._readers.pop(key, None)
        if reader is not None:
            reader.close()
            self._sink.remove_input(key)

    def _on_sip_dtmf(self, dtmf: rtc.SipDTMF) -> None:
        digit = dtmf_digit(dtmf.code, dtmf.digit)
        if not digit or self._on_dtmf is None:
            return
        try:
            self._on_dtmf(digit)
        except Exception:
            logger.exception("DTMF handler failed on %r for %s", digit, self.spec.identity)

    async def __aenter__(self) -> Self:
        await self.join()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.leave()
