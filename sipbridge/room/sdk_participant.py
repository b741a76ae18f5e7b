"""The room transport on the livekit rtc SDK (config `room_transport: sdk`): everything goes through the SDK.

Every SDK call crosses its FFI and costs tens of microseconds, so the hot paths make one FFI call per 20 ms frame
per direction: `push()` captures each frame whole, and each remote track is read by an FFI audio stream that
already delivers mono frames at the mixer's rate and frame size. Both hot paths go through the FfiRouter
(ffi_router.py), so their events cost O(1) however many calls share the process.

The SDK resumes or rejoins by itself when the connection is lost. A rejoin gives the participant the token's
attributes again, so once reconnected we set them back to what they were, with what was set meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Unpack

from livekit import rtc

from sipbridge.media.codecs import Pcm
from sipbridge.room.dtmf import dtmf_code
from sipbridge.room.endings import EndReason, end_reason
from sipbridge.room.ffi_router import AudioTrackReader, FfiRouter, capture_frame
from sipbridge.room.participant import FRAME_MS, ParticipantOptions, RoomConnectError, RoomParticipant
from sipbridge.room.rpc import RpcError, RpcHandler, RpcInvocation
from sipbridge.room.sink import AudioSink, TrackKey
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

SOURCE_QUEUE_MS = 100
"""Audio the SDK's source may hold ahead of playout: absorbs RTP arrival jitter, bounds added latency."""


class SdkParticipant(RoomParticipant):
    """A call's participant through the livekit rtc SDK (see `RoomParticipant` for the contract)."""

    def __init__(
        self,
        credentials: LiveKitCredentials,
        spec: ParticipantSpec,
        sink: AudioSink,
        **options: Unpack[ParticipantOptions],
    ) -> None:
        super().__init__(credentials, spec, sink, **options)
        self._room = rtc.Room()
        self._source: rtc.AudioSource | None = None
        self._router = FfiRouter.get()
        self._readers: dict[TrackKey, AudioTrackReader] = {}
        self._release: asyncio.Future[None] | None = None
        self._token_attributes: dict[str, str] = {}
        self._before: dict[str, str] = {}
        """Our attributes when the connection was lost."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._room.on("reconnecting", self._on_reconnecting)
        self._room.on("reconnected", self._on_reconnected)
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
        return str(self._room.local_participant.sid) if self._room.isconnected() else ""

    @property
    def attributes(self) -> Mapping[str, str]:
        return self._room.local_participant.attributes if self._room.isconnected() else {}

    @property
    def connected(self) -> bool:
        return self._room.isconnected()

    async def join(self) -> None:
        token = self._token or sip_participant_token(self.credentials, self.spec)
        options = rtc.RoomOptions(auto_subscribe=True, connect_timeout=self._connect_timeout)
        try:
            await self._room.connect(self.credentials.ws_url, token, options)
            self._admitted.set()  # the SDK tells of the join once its media connection is up too
            self._token_attributes = dict(self._room.local_participant.attributes)
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
        """Waits only while the SDK's source is full (any rate: the SDK resamples towards Opus)."""
        source = self._source
        if source is None or self._ended.done():
            return
        if self._processor is not None:
            frame = self._processor.process(frame)
        await capture_frame(self._router, source, frame)

    async def send_dtmf(self, digit: str) -> None:
        await self._room.local_participant.publish_dtmf(code=dtmf_code(digit), digit=digit.upper())

    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        """While the SDK reconnects the change is kept and made once it is back (the call returns at once)."""
        changes = dict(attributes)
        self._unconfirmed.update(changes)
        if self._reconnecting:
            return
        try:
            await self._room.local_participant.set_attributes(changes)
        except Exception:
            if self._reconnecting:
                return
            raise
        self._confirmed(changes)

    @property
    def _reconnecting(self) -> bool:
        return self._room.connection_state == rtc.ConnectionState.CONN_RECONNECTING

    def _on_reconnecting(self) -> None:
        self._before = dict(self._room.local_participant.attributes)
        self.log.warning("connection to the room lost; the SDK is reconnecting")

    def _on_reconnected(self) -> None:
        """Sets every attribute again (after a rejoin the room has the token's; after a resume this changes
        nothing), and removes those of the token that were removed."""
        wanted = self._wanted_attributes(self._before)
        changes = wanted | {key: "" for key in self._token_attributes if key not in wanted}
        self.log.info("back in the room as %s", self.sid)
        task = asyncio.create_task(self._set_again(changes))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _set_again(self, changes: dict[str, str]) -> None:
        try:
            await self._room.local_participant.set_attributes(changes)
        except Exception as exc:
            self.log.warning("attributes not set again after reconnecting: %r", exc)
            return
        self._confirmed(changes)

    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        async def answer(data: rtc.RpcInvocationData) -> str:
            invocation = RpcInvocation(
                data.request_id, data.caller_identity, method, data.payload, data.response_timeout
            )
            try:
                return await handler(invocation)
            except RpcError as error:
                raise rtc.RpcError(error.code, error.message, error.data or None) from error

        self._room.local_participant.register_rpc_method(method, answer)

    async def leave(self) -> None:
        """Also waits until the source, the streams and the processor are released."""
        self._end(EndReason.LEFT)
        await asyncio.shield(self._start_release())

    def _start_release(self) -> asyncio.Future[None]:
        if self._release is None:
            self._release = asyncio.ensure_future(self._release_all())
        return self._release

    async def _release_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for key in list(self._readers):
            self._stop_reading(key)
        if self._source is not None:
            await self._source.aclose()
            self._source = None
        await self._room.disconnect()
        if self._processor is not None:
            self._processor.close()

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
        self._deliver_dtmf(dtmf.code, dtmf.digit)
