"""LeanParticipant: a call's participant of kind SIP made of our own signalling, aiortc's connection and our media.

The participant lives as long as the call; the connection to the room is a `RoomSession` (one participant ID on
the server, one peer connection), replaced when it is lost. Media runs on the shared 20 ms cadence, one pass per
tick: at most one caller packet out (nothing while the caller sends nothing), one frame of every remote track
into the sink. Slots the cadence gave up because the loop ran late are dropped on both sides, undecoded and
unencoded, so falling behind does not cost more work. Everything else is events: signalling messages, data
packets (SIP DTMF, RPC), the peer connection failing.

Reconnecting, as LiveKit's SDKs do it: when only the signalling connection dropped or went silent, the server
keeps our participant and the media keeps flowing, so we first resume (a new websocket for the same participant,
`reconnect` in the join request). When that is refused, when the peer connection failed (aiortc has no ICE
restart, which a resume would need), or when the server's `leave` asks for it (RESUME or RECONNECT: a node
draining, a migration, a transport failure on its side), we rejoin: a new session with the same identity and
token (the latest `refresh_token`), our track published again, every audio track subscribed again, our attributes
as they were plus what was set meanwhile. The SIP side goes on: the phone hears silence and sends into nothing
while a rejoin is under way. Attempts follow each other with exponential back-off and full jitter (0.3 s doubling
to 7 s, as the Rust SDK); after RECONNECT_WINDOW without success the call ends CONNECTION_LOST.

The ending is the first of: our `leave()` (LEFT), the server's `leave` with action DISCONNECT and its reason
(REMOVED, ROOM_DELETED, REPLACED, SERVER_SHUTDOWN; a reason we do not name is CONNECTION_LOST), the server turning
our token down while reconnecting, reconnecting failing for RECONNECT_WINDOW, the media tick failing
(CONNECTION_LOST). Whatever ends it, everything is released: the cadence subscription, the sink inputs, RPC
handlers still running, the websocket, the peer connection (sockets, its tasks and threads), the processor.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any, Unpack

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

from sipbridge.media.cadence import SharedCadence
from sipbridge.media.codecs import Pcm
from sipbridge.room.dtmf import dtmf_code
from sipbridge.room.endings import EndReason
from sipbridge.room.lean.caller import CallerAudio
from sipbridge.room.lean.rpc_server import RpcServer
from sipbridge.room.lean.session import RoomSession, SessionHooks, leave_loss
from sipbridge.room.lean.signal import SignalLeft, SignalRefused
from sipbridge.room.participant import FRAME_MS, ParticipantOptions, RoomConnectError, RoomParticipant
from sipbridge.room.rpc import RpcHandler
from sipbridge.room.sink import AudioSink
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

RECONNECT_WINDOW = 30.0
"""Seconds a lost connection has to come back (by resume or rejoin) before the call ends CONNECTION_LOST."""
BACKOFF_FIRST = 0.3
BACKOFF_MAX = 7.0
"""Seconds: the ceiling of the wait before reconnect attempt n (n >= 2) is BACKOFF_FIRST * 2**(n-2), at most
BACKOFF_MAX; the wait is drawn between 0 and that ceiling. The first attempt goes at once."""


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
        self._hooks = SessionHooks(self._on_data, self._remote_audio.set, self._on_token, self._admitted.set)
        self._session: RoomSession | None = None
        self._up = asyncio.Event()
        """Set while a session carries the call (cleared while reconnecting)."""
        self._keeper: asyncio.Task[None] | None = None
        self._cadence: SharedCadence | None = None
        self._subscription = 0
        self._joined = False
        self._release: asyncio.Future[None] | None = None
        self._token_attributes: dict[str, str] = {}
        """What the token gives us (the first JoinResponse): a rejoin only asks for what differs."""

    @property
    def sid(self) -> str:
        return self._session.sid if self._session is not None and self.connected else ""

    @property
    def attributes(self) -> Mapping[str, str]:
        return dict(self._session.attributes) if self._session is not None else {}

    @property
    def connected(self) -> bool:
        """In the call: joined and not ended (also while a lost connection is being brought back)."""
        return self._joined and self._release is None

    # -- joining ---------------------------------------------------------------------------------------------

    async def join(self) -> None:
        self._token = self._token or sip_participant_token(self.credentials, self.spec)
        try:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    self._session = await self._new_session({})
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
        self._token_attributes = dict(self._session.attributes)
        self._joined = True
        self._up.set()
        self._cadence = SharedCadence.for_loop(FRAME_MS / 1000)
        self._subscription = self._cadence.subscribe(self._on_frames, self._on_media_error)
        self._keeper = asyncio.create_task(self._keep_in_room())
        self.log.info("joined as %s", self._session.sid)

    async def _new_session(self, attributes: Mapping[str, str]) -> RoomSession:
        """A session joined with `attributes` added to the token's; closed again when joining fails."""
        session = RoomSession(self._caller, self._sink, self.subscribe_rate, self._hooks, self.log)
        self._session = session
        try:
            await session.join(self.credentials.ws_url, self._token, attributes)
        except BaseException:  # cancelled by our leave() too: the server hears it then
            await session.close(leave=self.end_reason is EndReason.LEFT)
            raise
        return session

    def _on_token(self, token: str) -> None:
        self._token = token

    # -- staying in the room ---------------------------------------------------------------------------------

    async def _keep_in_room(self) -> None:
        """For the whole call: brings each lost session back, or ends the call."""
        while True:
            assert self._session is not None
            loss = await self._session.wait_lost()
            if loss.end is not None:
                self._finish(loss.end)
                return
            self._up.clear()
            self.log.warning("connection to the room lost: %s; reconnecting", loss.why)
            try:
                known = await self._reconnect(dict(self._session.attributes))
            except _GiveUp as give_up:
                self._finish(give_up.reason, f"{give_up} (lost: {loss.why})")
                return
            self._up.set()  # from here on updates go straight out; what was set meanwhile goes out now
            await self._reapply_attributes(known)

    async def _reconnect(self, before: dict[str, str]) -> Mapping[str, str]:
        """Resumes the session or replaces it (see the module's docstring); `before` is the room's last view of
        our attributes. Returns the view our attributes should now follow (the session's own after a resume,
        `before` after a rejoin); _GiveUp when the call must end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT_WINDOW
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                delay = random.uniform(0, min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 2)))
                if loop.time() + delay >= deadline:
                    raise _GiveUp(EndReason.CONNECTION_LOST, f"not back in the room within {RECONNECT_WINDOW:.0f} s")
                await asyncio.sleep(delay)
            session = self._session
            assert session is not None
            resuming = session.resumable
            how = "resume" if resuming else "rejoin"
            try:
                async with asyncio.timeout(min(self._connect_timeout, deadline - loop.time())):
                    if resuming:
                        await session.resume(self.credentials.ws_url, self._token)
                    else:
                        await self._rejoin(session, before)
            except SignalRefused as refused:
                left = leave_loss(refused.leave) if isinstance(refused, SignalLeft) else None
                if left is not None and left.end is not None:
                    raise _GiveUp(left.end, left.why) from None
                if refused.token_refused:
                    raise _GiveUp(EndReason.CONNECTION_LOST, str(refused)) from None
                self.log.info("reconnecting: attempt %d (%s) failed: %s", attempt, how, refused)
            except Exception as exc:  # a timeout, a connection that broke, a negotiation that failed
                self.log.info("reconnecting: attempt %d (%s) failed: %r", attempt, how, exc)
            else:
                current = self._session
                assert current is not None
                done = "resumed" if resuming else f"rejoined as {current.sid}"
                self.log.info("back in the room: %s (attempt %d)", done, attempt)
                return current.attributes if resuming else before
            # a resume that failed leaves nothing to resume: the next attempt joins anew, as the SDKs escalate
            await session.close(leave=False)

    async def _rejoin(self, old: RoomSession, before: Mapping[str, str]) -> None:
        """A new session with the same identity in place of `old` (the server drops `old`'s participant, if it
        still has it, as a duplicate identity: no leave from us, so agents do not take it for a hang-up). The
        join asks for the attributes the token does not give, so agents see the call as it was from the start."""
        await old.close(leave=False)
        wanted = self._wanted_attributes(before)
        added = {key: value for key, value in wanted.items() if self._token_attributes.get(key) != value}
        self._session = await self._new_session(added)

    async def _reapply_attributes(self, known: Mapping[str, str]) -> None:
        """Back in the room: makes our attributes `known` plus what the server has not confirmed."""
        session = self._session
        assert session is not None
        wanted = self._wanted_attributes(known)
        changes = {key: value for key, value in wanted.items() if session.attributes.get(key) != value}
        changes.update({key: "" for key in session.attributes if key not in wanted})
        if changes:
            try:
                await self._request_attributes(session, changes, after_reconnect=True)
            except (ConnectionError, TimeoutError) as exc:  # lost again, or left: the keeper sees it next
                self.log.info("attributes not set again after reconnecting: %r", exc)

    # -- media -----------------------------------------------------------------------------------------------

    def _on_frames(self, skipped: int, frames: int) -> None:
        caller, session = self._caller, self._session
        caller.skip(skipped)
        if session is not None and session.sending:
            session.send_frames(frames)
        else:
            caller.skip(frames)  # a rejoin under way: the caller's audio goes nowhere, unencoded
        if session is not None:
            session.play_frames(skipped, frames)

    def _on_media_error(self, exc: BaseException) -> None:
        self._cadence = None
        self._finish(EndReason.CONNECTION_LOST, f"media failed: {exc!r}")

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
        session = self._session
        if session is None or not self.connected or not self._up.is_set():
            raise ConnectionError("not in the room")
        session.send_data(packet.SerializeToString())

    async def send_dtmf(self, digit: str) -> None:
        """Sends at once, or once a lost connection is back (ConnectionError if the call ends first)."""
        dtmf = models.SipDTMF(code=dtmf_code(digit), digit=digit.upper())
        await self._wait_up()
        self._send_packet(models.DataPacket(kind=models.DataPacket.RELIABLE, sip_dtmf=dtmf))

    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        self._rpc.register(method, handler)

    async def _wait_up(self) -> None:
        if self.connected and not self._up.is_set():
            up = asyncio.ensure_future(self._up.wait())
            waiters: list[asyncio.Future[Any]] = [up, self._ended]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()
        if not self.connected:
            raise ConnectionError("not in the room")

    # -- attributes ------------------------------------------------------------------------------------------

    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        """Waits for the server's answer; while a lost connection is being brought back the change is kept and
        made as soon as it is (the call returns at once then)."""
        if not self.connected:
            raise ConnectionError("not in the room")
        changes = dict(attributes)
        self._unconfirmed.update(changes)
        session = self._session
        if session is None or not self._up.is_set():
            return
        await self._request_attributes(session, changes, after_reconnect=False)

    async def _request_attributes(
        self, session: RoomSession, changes: dict[str, str], *, after_reconnect: bool
    ) -> None:
        try:
            response = await session.update_attributes(changes)
        except ConnectionError:
            if not self.connected:
                raise ConnectionError("left the room") from None
            return  # lost meanwhile: made again on the next session or resume
        self._confirmed(changes)
        if response.reason != rtc.RequestResponse.OK:
            reason = rtc.RequestResponse.Reason.Name(response.reason)
            if after_reconnect:
                self.log.warning("attributes not set again after reconnecting: %s %s", reason, response.message)
                return
            raise RoomRequestRefused(f"attribute update refused: {reason} {response.message}")

    # -- the end ---------------------------------------------------------------------------------------------

    async def leave(self) -> None:
        self._end(EndReason.LEFT)
        await asyncio.shield(self._start_release())

    def _finish(self, reason: EndReason, why: str = "") -> None:
        if why and not self._ended.done():
            self.log.warning("connection to the room lost: %s", why)
        self._end(reason)
        self._start_release()

    def _start_release(self) -> asyncio.Future[None]:
        if self._release is None:
            self._release = asyncio.ensure_future(self._release_all())
        return self._release

    async def _release_all(self) -> None:
        self._up.clear()
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        if self._cadence is not None:
            self._cadence.unsubscribe(self._subscription)
            self._cadence = None
        self._caller.close()
        await self._rpc.close()
        if self._session is not None:
            await self._session.close(leave=self.end_reason is EndReason.LEFT)
        if self._processor is not None:
            self._processor.close()


class _GiveUp(Exception):
    """Reconnecting is over: the call ends for `reason`."""

    def __init__(self, reason: EndReason, why: str) -> None:
        super().__init__(why)
        self.reason = reason
