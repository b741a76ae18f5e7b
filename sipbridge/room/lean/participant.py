"""LeanParticipant: a call's participant of kind SIP made of our own signalling, aiortc's connection and our media.

Joining: the websocket's JoinResponse gives our sid and the others; we announce our microphone track (AddTrack),
offer, and are in the room once the answer is applied, the track is published, ICE and DTLS are up and the
reliable data channel is open. We subscribe to every other participant's audio track as the roster shows it
(never to video); the server then asks for m-sections (MediaSectionsRequirement), we offer them, and each answer
says which m-section carries which track.

Media runs on the shared 20 ms cadence, one pass per tick: at most one caller packet out (nothing while the caller
sends nothing), one frame of every remote track into the sink. Slots the cadence gave up because the loop ran late
are dropped on both sides, undecoded and unencoded, so falling behind does not cost more work. Everything else is
events: signalling messages, data packets (SIP DTMF, RPC), the peer connection failing.

The ending is the first of: our `leave()` (LEFT), the server's `leave` with its reason (REMOVED, ROOM_DELETED,
REPLACED, SERVER_SHUTDOWN; a reason we do not name, or a request to reconnect, is CONNECTION_LOST: we do not
reconnect), the signalling connection dropping or going silent, the peer connection failing or closing with no
leave from the server within LEAVE_GRACE (CONNECTION_LOST).
Whatever ends it, everything is released: the cadence subscription, the sink inputs, RPC handlers still running,
the websocket, the peer connection (sockets, its tasks and threads), the processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack

from aiortc.rtp import RtpPacket
from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

from sipbridge.media.cadence import SharedCadence
from sipbridge.media.codecs import Pcm
from sipbridge.room.dtmf import dtmf_code
from sipbridge.room.endings import EndReason, end_reason
from sipbridge.room.lean.caller import CallerAudio
from sipbridge.room.lean.negotiated import Negotiated, ReceiveRoute
from sipbridge.room.lean.peer import PeerLink
from sipbridge.room.lean.remote import RemoteAudio
from sipbridge.room.lean.roster import Roster
from sipbridge.room.lean.rpc_server import RpcServer
from sipbridge.room.lean.rtp_path import RtpPath, report_sent
from sipbridge.room.lean.signal import SignalConnection, SignalRefused
from sipbridge.room.participant import FRAME_MS, ParticipantOptions, RoomConnectError, RoomParticipant
from sipbridge.room.rpc import RpcHandler
from sipbridge.room.sink import AudioSink, TrackKey
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

TRACK_NAME = "phone"
REQUEST_TIMEOUT = 10.0
"""Seconds the server has to answer a request of ours (an attribute update)."""
LEAVE_GRACE = 2.0
"""Seconds the signalling has to say why once the peer connection went down: a server ending our participation
closes the peer connection as it sends its leave, and either may arrive first."""


class RoomRequestRefused(Exception):
    """The server turned a request of ours down (e.g. attributes over its size limit)."""


class LeanParticipant(RoomParticipant):
    """A call's participant on the lean transport (see `RoomParticipant` for the contract)."""

    def __init__(
        self,
        credentials: LiveKitCredentials,
        spec: ParticipantSpec,
        sink: AudioSink,
        **options: Unpack[ParticipantOptions],
    ) -> None:
        super().__init__(credentials, spec, sink, **options)
        self._caller = CallerAudio(self.publish_rate)
        self._rpc = RpcServer(self._send_packet, self.log)
        self._signal: SignalConnection | None = None
        self._peer: PeerLink | None = None
        self._rtp: RtpPath | None = None
        self._roster = Roster("")
        self._routes: tuple[ReceiveRoute, ...] = ()
        self._remotes: dict[int, RemoteAudio] = {}
        """The remote tracks we receive, by the SSRC their RTP comes with."""
        self._subscribed: set[str] = set()
        self._published: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._requests: dict[int, asyncio.Future[rtc.RequestResponse]] = {}
        self._request_ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._peer_lost: asyncio.TimerHandle | None = None
        self._cadence: SharedCadence | None = None
        self._subscription = 0
        self._joined = False
        self._release: asyncio.Future[None] | None = None
        self._sid = ""
        self._attributes: dict[str, str] = {}

    @property
    def sid(self) -> str:
        return self._sid if self.connected else ""

    @property
    def attributes(self) -> Mapping[str, str]:
        return dict(self._attributes)

    @property
    def connected(self) -> bool:
        return self._joined and self._release is None

    # -- joining ---------------------------------------------------------------------------------------------

    async def join(self) -> None:
        token = self._token or sip_participant_token(self.credentials, self.spec)
        try:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._connect(token)
            except TimeoutError:
                raise ConnectionError(f"not in the room within {self._connect_timeout:.0f} s") from None
        except (SignalRefused, ConnectionError) as exc:
            await self.leave()
            raise RoomConnectError(
                f"cannot join room {self.spec.room!r} at {self.credentials.ws_url} as {self.spec.identity!r}: {exc}"
            ) from exc
        except BaseException:
            await self.leave()
            raise
        self._joined = True
        self._cadence = SharedCadence.for_loop(FRAME_MS / 1000)
        self._subscription = self._cadence.subscribe(self._on_frames, self._on_media_error)
        self.log.info("joined as %s", self._sid)

    async def _connect(self, token: str) -> None:
        self._signal = signal = await SignalConnection.open(self.credentials.ws_url, token)
        joined = signal.join
        self._sid = joined.participant.sid
        self._attributes = dict(joined.participant.attributes)
        self._roster = Roster(self._sid)
        self._peer = peer = PeerLink(self._send_offer, self._on_negotiated, self._on_data, self.log)
        peer.failure.add_done_callback(self._on_peer_failure)
        self._reader = asyncio.create_task(self._read_signal(signal))
        track = rtc.AddTrackRequest(
            cid=peer.track.id,
            name=TRACK_NAME,
            type=models.TrackType.AUDIO,
            source=models.TrackSource.MICROPHONE,
            disable_dtx=True,
            disable_red=True,
        )
        await signal.send(rtc.SignalRequest(add_track=track))
        peer.renegotiate()
        self._on_participants(joined.other_participants)
        up = asyncio.ensure_future(asyncio.gather(self._published, peer.wait_up()))
        waiters: list[asyncio.Future[Any]] = [up, self._ended, peer.failure]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not up.done():
            up.cancel()
            why = peer.failure.result() if peer.failure.done() else self._ended.result().value
            raise ConnectionError(f"the connection ended while joining: {why}")
        up.result()

    # -- signalling ------------------------------------------------------------------------------------------

    async def _send_offer(self, offer: rtc.SessionDescription) -> None:
        assert self._signal is not None
        await self._signal.send(rtc.SignalRequest(offer=offer))

    async def _read_signal(self, signal: SignalConnection) -> None:
        async for response in signal.responses():
            try:
                await self._on_signal(response)
            except Exception:
                self.log.exception("signal message %s failed", response.WhichOneof("message"))
        if signal.lost_because:
            self._lost(signal.lost_because)

    async def _on_signal(self, response: rtc.SignalResponse) -> None:
        peer = self._peer
        assert peer is not None
        which = response.WhichOneof("message")
        if which == "answer":
            peer.on_answer(response.answer)
        elif which == "trickle":
            await peer.add_candidate(response.trickle.candidateInit)
        elif which == "media_sections_requirement":
            peer.add_receivers(response.media_sections_requirement.num_audios)
        elif which == "track_published":
            if response.track_published.cid == peer.track.id and not self._published.done():
                self._published.set_result(None)
        elif which == "update":
            self._on_participants(response.update.participants)
        elif which == "request_response":
            self._on_request_response(response.request_response)
        elif which == "leave":
            leave = response.leave
            action = rtc.LeaveRequest.Action.Name(leave.action)
            self.log.info(
                "the server ends our participation: %s (%s)", models.DisconnectReason.Name(leave.reason), action
            )
            self._end(end_reason(leave.reason))
            self._start_release()

    def _on_request_response(self, response: rtc.RequestResponse) -> None:
        waiter = self._requests.pop(response.request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        elif response.reason != rtc.RequestResponse.OK:  # e.g. the add_track of a failing join
            self.log.warning("the server refused a request: %s", response)

    def _on_participants(self, infos: Iterable[models.ParticipantInfo]) -> None:
        others = []
        for info in infos:
            if info.sid == self._sid:
                self._attributes = dict(info.attributes)
            else:
                others.append(info)
        self._roster.update(others)
        tracks = self._roster.audio_tracks()
        new = [sid for sid in tracks if sid not in self._subscribed]
        self._subscribed = {sid for sid in self._subscribed if sid in tracks} | set(new)
        if new and self._signal is not None:
            subscription = rtc.UpdateSubscription(track_sids=new, subscribe=True)
            task = asyncio.create_task(self._signal.send(rtc.SignalRequest(subscription=subscription)))
            task.add_done_callback(_log_failure(self, "subscribing"))
        self._sync_remotes()

    # -- media -----------------------------------------------------------------------------------------------

    def _on_negotiated(self, negotiated: Negotiated) -> None:
        peer = self._peer
        assert peer is not None
        self._caller.set_route(negotiated.send)
        if self._rtp is None:
            self._rtp = RtpPath(peer.dtls, self._on_rtp)
        self._routes = negotiated.receive
        self.log.debug("negotiated: out %s, in %s", negotiated.send, negotiated.receive)
        self._sync_remotes()

    def _sync_remotes(self) -> None:
        """Receives exactly the negotiated tracks that are still published; the sink gets an input for each."""
        if self._release is not None:
            return
        tracks = self._roster.audio_tracks()
        wanted = {route.ssrc: route for route in self._routes if route.track_sid in tracks}
        for ssrc, remote in list(self._remotes.items()):
            if wanted.get(ssrc) != remote.route:
                self._drop_remote(ssrc)
        for ssrc, route in wanted.items():
            if ssrc not in self._remotes:
                key = TrackKey(tracks[route.track_sid], route.track_sid)
                self._remotes[ssrc] = RemoteAudio(key, route, self.subscribe_rate, self._sink.add_input(key))
                self._remote_audio.set()

    def _drop_remote(self, ssrc: int) -> None:
        remote = self._remotes.pop(ssrc)
        self._sink.remove_input(remote.key)

    def _on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        remote = self._remotes.get(packet.ssrc)
        if remote is not None:
            remote.receive(packet, arrival)

    def _on_frames(self, skipped: int, frames: int) -> None:
        caller, rtp = self._caller, self._rtp
        caller.skip(skipped)
        sent = False
        for _ in range(frames):
            packet = caller.next_packet()
            if packet is not None and rtp is not None:
                sent = rtp.send(packet) or sent
        if sent and self._peer is not None:
            report_sent(self._peer.sender, caller.packets, caller.payload_octets, caller.last_timestamp)
        for remote in self._remotes.values():
            remote.skip_frames(skipped)
            for _ in range(frames):
                remote.play_frame()

    def _on_media_error(self, exc: BaseException) -> None:
        self._cadence = None
        self._lost(f"media failed: {exc!r}")

    async def push(self, frame: Pcm) -> None:
        """Waits only while the short queue towards the tick is full (frames of 20 ms at an Opus rate)."""
        if not self.connected:
            return
        if self._processor is not None:
            frame = self._processor.process(frame)
        await self._caller.put(frame)

    # -- data: DTMF, RPC -------------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        try:
            packet = models.DataPacket.FromString(data)
        except DecodeError:
            self.log.debug("undecodable data packet (%d bytes)", len(data))
            return
        which = packet.WhichOneof("value")
        if which == "sip_dtmf":
            self._deliver_dtmf(packet.sip_dtmf.code, packet.sip_dtmf.digit)
        elif which == "rpc_request":
            self._rpc.on_request(packet.participant_identity, packet.rpc_request)

    def _send_packet(self, packet: models.DataPacket) -> None:
        if self._peer is None or not self.connected:
            raise ConnectionError("not in the room")
        self._peer.send_data(packet.SerializeToString())

    async def send_dtmf(self, digit: str) -> None:
        dtmf = models.SipDTMF(code=dtmf_code(digit), digit=digit.upper())
        self._send_packet(models.DataPacket(kind=models.DataPacket.RELIABLE, sip_dtmf=dtmf))

    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        self._rpc.register(method, handler)

    # -- attributes ------------------------------------------------------------------------------------------

    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        signal = self._signal
        if signal is None or not self.connected:
            raise ConnectionError("not in the room")
        request_id = next(self._request_ids)
        waiter = self._requests[request_id] = asyncio.get_running_loop().create_future()
        try:
            update = rtc.UpdateParticipantMetadata(attributes=dict(attributes), request_id=request_id)
            await signal.send(rtc.SignalRequest(update_metadata=update))
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response = await waiter
        finally:
            self._requests.pop(request_id, None)
        if response.reason != rtc.RequestResponse.OK:
            reason = rtc.RequestResponse.Reason.Name(response.reason)
            raise RoomRequestRefused(f"attribute update refused: {reason} {response.message}")

    # -- the end ---------------------------------------------------------------------------------------------

    async def leave(self) -> None:
        self._end(EndReason.LEFT)
        await asyncio.shield(self._start_release())

    def _on_peer_failure(self, failure: asyncio.Future[str]) -> None:
        self._peer_lost = asyncio.get_running_loop().call_later(LEAVE_GRACE, self._lost, failure.result())

    def _lost(self, why: str) -> None:
        if not self._ended.done():
            self.log.warning("connection to the room lost: %s", why)
        self._end(EndReason.CONNECTION_LOST)
        self._start_release()

    def _start_release(self) -> asyncio.Future[None]:
        if self._release is None:
            self._release = asyncio.ensure_future(self._release_all())
        return self._release

    async def _release_all(self) -> None:
        if self._peer_lost is not None:
            self._peer_lost.cancel()
        if self._cadence is not None:
            self._cadence.unsubscribe(self._subscription)
            self._cadence = None
        self._caller.close()
        for ssrc in list(self._remotes):
            self._drop_remote(ssrc)
        for waiter in self._requests.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("left the room"))
        await self._rpc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._signal is not None:
            if self.end_reason is EndReason.LEFT:
                with contextlib.suppress(ConnectionError):
                    leave = rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)
                    await self._signal.send(rtc.SignalRequest(leave=leave))
            await self._signal.close()
        if self._peer is not None:
            await self._peer.close()
        if self._processor is not None:
            self._processor.close()


def _log_failure(participant: LeanParticipant, what: str) -> Callable[[asyncio.Task[None]], None]:
    def check(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            participant.log.warning("%s failed: %r", what, task.exception())

    return check
