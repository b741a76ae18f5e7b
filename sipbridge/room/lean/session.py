"""One session of the call's participant on livekit-server: the participant the server knows by one ID, with our
peer connection to it and the signalling connection that speaks for it.

Joining: the websocket's JoinResponse gives our ID and the others; we announce our microphone track (AddTrack),
offer, and the session is up once the answer is applied, the track is published, ICE and DTLS are up and the
reliable data channel is open. We subscribe to every other participant's audio track as the roster shows it
(never to video); the server then asks for m-sections (MediaSectionsRequirement), we offer them, and each answer
says which m-section carries which track.

A session is lost (`wait_lost()`) when its signalling connection drops or goes silent, when its peer connection
fails with no word from the server within LEAVE_GRACE, or when the server sends a `leave`: with action
DISCONNECT that ends the call (`Loss.end`, the leave's reason); RESUME or RECONNECT ask for a new session. While
only the signalling is gone the server keeps our participant and the media keeps flowing: `resume()` opens a
new signalling connection for the same participant. Anything else takes a new session (the caller's rejoin).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiortc.rtp import RtpPacket
from livekit.protocol import models, rtc

from sipbridge.room.endings import EndReason, end_reason
from sipbridge.room.lean.caller import CallerAudio
from sipbridge.room.lean.negotiated import Negotiated, ReceiveRoute
from sipbridge.room.lean.peer import PeerLink
from sipbridge.room.lean.remote import RemoteAudio
from sipbridge.room.lean.roster import Roster
from sipbridge.room.lean.rtp_path import RtpPath, report_sent
from sipbridge.room.lean.signal import KeepAlive, SignalConnection
from sipbridge.room.sink import AudioSink, TrackKey

TRACK_NAME = "phone"
REQUEST_TIMEOUT = 10.0
"""Seconds the server has to answer a request of ours (an attribute update)."""
LEAVE_GRACE = 2.0
"""Seconds the signalling has to say why once the peer connection went down: a server ending our participation
closes the peer connection as it sends its leave, and either may arrive first."""


@dataclass(frozen=True)
class Loss:
    """Why a session stopped carrying the call."""

    why: str
    end: EndReason | None = None
    """The server ended our participation for good (its leave said DISCONNECT, for this reason); None: a resume
    or a new session may bring the call back."""
    rejoin: bool = False
    """Only a new session can: the server dropped our participant or wants ICE restarted (we cannot)."""


def leave_loss(leave: rtc.LeaveRequest) -> Loss:
    """What the server's `leave` means for the session. DISCONNECT ends the call for the leave's reason; RECONNECT
    asks for a new session; RESUME says the server's side of the peer connection failed and asks for a resume
    with an ICE restart, which aiortc cannot do, so that too takes a new session."""
    reason = models.DisconnectReason.Name(leave.reason)
    if leave.action == rtc.LeaveRequest.DISCONNECT:
        return Loss(f"the server ended our participation ({reason})", end_reason(leave.reason))
    action = rtc.LeaveRequest.Action.Name(leave.action)
    return Loss(f"the server asked us to reconnect ({reason}, {action})", rejoin=True)


@dataclass(frozen=True)
class SessionHooks:
    """What a session tells the participant it serves."""

    on_data: Callable[[bytes], None]
    """A data packet from the room (SIP DTMF, RPC)."""
    on_remote_audio: Callable[[], None]
    """A remote audio track now reaches the sink."""
    on_token: Callable[[str], None]
    """The server handed us a fresh token (`refresh_token`) for later joins and resumes."""
    on_admitted: Callable[[], None]
    """The server answered our join: we are in the room (the media connection follows)."""


class RoomSession:
    def __init__(
        self,
        caller: CallerAudio,
        sink: AudioSink,
        subscribe_rate: int,
        hooks: SessionHooks,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._caller = caller
        self._sink = sink
        self._subscribe_rate = subscribe_rate
        self._hooks = hooks
        self.log = log
        self._signal: SignalConnection | None = None
        self._keep_alive = KeepAlive(5, 15)
        self._peer: PeerLink | None = None
        self._rtp: RtpPath | None = None
        self._roster = Roster("")
        self._resync_roster = False
        self._routes: tuple[ReceiveRoute, ...] = ()
        self._remotes: dict[int, RemoteAudio] = {}
        """The remote tracks we receive, by the SSRC their RTP comes with."""
        self._subscribed: set[str] = set()
        self._published: asyncio.Future[rtc.TrackPublishedResponse] = asyncio.get_running_loop().create_future()
        self._requests: dict[int, asyncio.Future[rtc.RequestResponse]] = {}
        self._request_ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._peer_lost: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[Loss] = asyncio.get_running_loop().create_future()
        self._rejoin = False
        """A loss only a new session can make good happened (see `Loss.rejoin`)."""
        self._closed = False
        self.sid = ""
        self.attributes: dict[str, str] = {}
        """Ours, as the room knows them."""

    # -- joining and resuming --------------------------------------------------------------------------------

    async def join(self, ws_url: str, token: str, attributes: Mapping[str, str]) -> None:
        """Joins as a new participant (`attributes` added to the token's) and returns once the session is up;
        SignalRefused or ConnectionError when it cannot be (the caller closes the session then)."""
        signal, joined = await SignalConnection.join(ws_url, token, attributes)
        self._signal = signal
        self._keep_alive = KeepAlive.of(joined)
        self.sid = joined.participant.sid
        self.attributes = dict(joined.participant.attributes)
        self._hooks.on_admitted()
        self._roster = Roster(self.sid)
        self._peer = peer = PeerLink(self._send_offer, self._on_negotiated, self._hooks.on_data, self.log)
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
        waiters: list[asyncio.Future[Any]] = [up, self._lost]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not up.done():
            up.cancel()
            raise ConnectionError(f"the connection ended while joining: {self._lost.result().why}")
        up.result()

    @property
    def resumable(self) -> bool:
        """Whether only the signalling is gone: the server keeps our participant and our peer connection is up."""
        peer = self._peer
        return not (self._rejoin or self._closed) and peer is not None and peer.up

    async def resume(self, ws_url: str, token: str) -> None:
        """Takes our participant up again on a new signalling connection (SignalRefused, SignalLeft or
        ConnectionError when the server will not); the peer connection and the media go on untouched."""
        assert self._peer is not None and self._lost.done() and not self._closed
        signal = await SignalConnection.resume(
            ws_url, token, self.sid, models.ReconnectReason.RR_SIGNAL_DISCONNECTED, self._keep_alive
        )
        if self._closed or not self.resumable:
            await signal.close()
            raise ConnectionError("the peer connection failed while resuming")
        self._signal = signal
        self._lost = asyncio.get_running_loop().create_future()
        self._resync_roster = True  # who left while we were away shows only in the full update that follows
        self._reader = asyncio.create_task(self._read_signal(signal))
        published = self._published.result()
        subscription = rtc.UpdateSubscription(track_sids=sorted(self._subscribed), subscribe=True)
        state = rtc.SyncState(publish_tracks=[published], subscription=subscription)
        await signal.send(rtc.SignalRequest(sync_state=state))
        await self._peer.resend_offer()

    # -- signalling ------------------------------------------------------------------------------------------

    @property
    def signalling(self) -> bool:
        """Whether the signalling connection is up (requests can be made)."""
        return self._signal is not None and not self._lost.done()

    async def _send_offer(self, offer: rtc.SessionDescription) -> None:
        # with the signalling down the offer waits for the resume, which sends it again (PeerLink.resend_offer)
        if self.signalling:
            assert self._signal is not None
            with contextlib.suppress(ConnectionError):
                await self._signal.send(rtc.SignalRequest(offer=offer))

    async def _read_signal(self, signal: SignalConnection) -> None:
        async for response in signal.responses():
            try:
                await self._on_signal(response)
            except Exception:
                self.log.exception("signal message %s failed", response.WhichOneof("message"))
        if signal.lost_because:
            self._report(Loss(signal.lost_because))

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
                self._published.set_result(response.track_published)
        elif which == "update":
            self._on_participants(response.update.participants)
        elif which == "request_response":
            self._on_request_response(response.request_response)
        elif which == "refresh_token":
            self._hooks.on_token(response.refresh_token)
        elif which == "leave":
            loss = leave_loss(response.leave)
            self.log.info("the server's leave: %s", loss.why)
            self._report(loss)

    def _on_request_response(self, response: rtc.RequestResponse) -> None:
        waiter = self._requests.pop(response.request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        elif response.reason != rtc.RequestResponse.OK:  # e.g. the add_track of a failing join
            self.log.warning("the server refused a request: %s", response)

    def _on_participants(self, infos: Iterable[models.ParticipantInfo]) -> None:
        infos = list(infos)
        if self._resync_roster and any(info.sid == self.sid for info in infos):
            # after a resume the server sends everyone, us included, before anything we asked for: whoever
            # is not in it left while we were away
            self._resync_roster = False
            self._roster = Roster(self.sid)
        others = []
        for info in infos:
            if info.sid == self.sid:
                self.attributes = dict(info.attributes)
            else:
                others.append(info)
        self._roster.update(others)
        tracks = self._roster.audio_tracks()
        new = [sid for sid in tracks if sid not in self._subscribed]
        self._subscribed = {sid for sid in self._subscribed if sid in tracks} | set(new)
        if new and self.signalling:
            assert self._signal is not None
            subscription = rtc.UpdateSubscription(track_sids=new, subscribe=True)
            task = asyncio.create_task(self._signal.send(rtc.SignalRequest(subscription=subscription)))
            task.add_done_callback(self._log_failure("subscribing"))
        self._sync_remotes()

    async def update_attributes(self, attributes: Mapping[str, str]) -> rtc.RequestResponse:
        """The server's answer to setting these attributes of ours; ConnectionError when the signalling is down
        or goes down before the answer."""
        signal = self._signal
        if signal is None or not self.signalling:
            raise ConnectionError("the signalling connection is down")
        request_id = next(self._request_ids)
        waiter = self._requests[request_id] = asyncio.get_running_loop().create_future()
        try:
            update = rtc.UpdateParticipantMetadata(attributes=dict(attributes), request_id=request_id)
            await signal.send(rtc.SignalRequest(update_metadata=update))
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response: rtc.RequestResponse = await waiter
            return response
        finally:
            self._requests.pop(request_id, None)

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
        if self._closed:
            return
        tracks = self._roster.audio_tracks()
        wanted = {route.ssrc: route for route in self._routes if route.track_sid in tracks}
        for ssrc, remote in list(self._remotes.items()):
            if wanted.get(ssrc) != remote.route:
                self._drop_remote(ssrc)
        for ssrc, route in wanted.items():
            if ssrc not in self._remotes:
                key = TrackKey(tracks[route.track_sid], route.track_sid)
                self._remotes[ssrc] = RemoteAudio(key, route, self._subscribe_rate, self._sink.add_input(key))
                self._hooks.on_remote_audio()

    def _drop_remote(self, ssrc: int) -> None:
        remote = self._remotes.pop(ssrc)
        self._sink.remove_input(remote.key)

    def _on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        remote = self._remotes.get(packet.ssrc)
        if remote is not None:
            remote.receive(packet, arrival)

    @property
    def sending(self) -> bool:
        """Whether our RTP can go out now (negotiated, DTLS up)."""
        return self._rtp is not None and self._rtp.up

    def send_frames(self, frames: int) -> None:
        """The caller's packets of `frames` frame slots out (at most one per slot)."""
        caller, rtp, peer = self._caller, self._rtp, self._peer
        assert rtp is not None and peer is not None
        sent = False
        for _ in range(frames):
            packet = caller.next_packet()
            if packet is not None:
                sent = rtp.send(packet) or sent
        if sent:
            report_sent(peer.sender, caller.packets, caller.payload_octets, caller.last_timestamp)

    def play_frames(self, skipped: int, frames: int) -> None:
        """Every remote track's frames of this tick into the sink; slots given up pass undecoded."""
        for remote in self._remotes.values():
            remote.skip_frames(skipped)
            for _ in range(frames):
                remote.play_frame()

    # -- data ------------------------------------------------------------------------------------------------

    @property
    def data_open(self) -> bool:
        return self._peer is not None and self._peer.data_open and not self._closed

    def send_data(self, data: bytes) -> None:
        """One data packet on the reliable channel; ConnectionError when it is not open."""
        if self._peer is None or self._closed:
            raise ConnectionError("not in the room")
        self._peer.send_data(data)

    # -- the end ---------------------------------------------------------------------------------------------

    async def wait_lost(self) -> Loss:
        return await asyncio.shield(self._lost)

    def _on_peer_failure(self, failure: asyncio.Future[str]) -> None:
        loss = Loss(failure.result(), rejoin=True)
        self._peer_lost = asyncio.get_running_loop().call_later(LEAVE_GRACE, self._report, loss)

    def _report(self, loss: Loss) -> None:
        """The first loss of the current signalling connection counts; requests waiting on it get no answer."""
        self._rejoin = self._rejoin or loss.rejoin
        if self._lost.done() or self._closed:
            return
        self._lost.set_result(loss)
        for waiter in self._requests.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(loss.why))

    async def close(self, *, leave: bool) -> None:
        """Releases everything the session holds (sink inputs, signalling, peer connection); `leave` tells the
        server first, when the signalling is still up."""
        if self._closed:
            return
        self._closed = True
        if self._peer_lost is not None:
            self._peer_lost.cancel()
        for ssrc in list(self._remotes):
            self._drop_remote(ssrc)
        for waiter in self._requests.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("left the room"))
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._signal is not None:
            if leave and not self._lost.done():
                with contextlib.suppress(ConnectionError):
                    request = rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)
                    await self._signal.send(rtc.SignalRequest(leave=request))
            await self._signal.close()
        if self._peer is not None:
            await self._peer.close()

    def _log_failure(self, what: str) -> Callable[[asyncio.Task[None]], None]:
        def check(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self.log.warning("%s failed: %r", what, task.exception())

        return check
