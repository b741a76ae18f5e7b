"""What every call does once it has a SIP leg and a room participant, whichever side dialled.

`BridgedCall` owns a call's RTP session, its audio and its participant: it opens them, starts media when offer/answer
settles, carries DTMF both ways, holds the call until someone ends it, transfers it (REFER), and releases everything
on every way out. `InboundCallFlow` and `OutboundCallFlow` add how the call starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Iterable, Mapping

from livekit.protocol.sip import SIPCallDirection, SIPCallInfo, SIPCallStatus, SIPMediaConfig

from sipbridge.calls import participant_rpc
from sipbridge.calls.audio import CallAudio, cancel_task
from sipbridge.calls.errors import CallError
from sipbridge.calls.media_link import codecs_for, sdp_encryption, stream_config
from sipbridge.calls.quality_watch import QualityWatch
from sipbridge.calls.registry import TransferDone
from sipbridge.calls.services import (
    DEFAULT_MAX_CALL_DURATION,
    CallLog,
    CallServices,
)
from sipbridge.ids import SIP_TRANSFER_PREFIX, new_id
from sipbridge.inspector.trace import CallSummary, CallTrace
from sipbridge.media.codecs import KNOWN_CODECS
from sipbridge.media.session import RtpSession
from sipbridge.media.tones import dial_tone
from sipbridge.netaddr import is_private_address
from sipbridge.room import (
    CALL_STATUS_ATTRIBUTE,
    CallStatus,
    ParticipantSpec,
    RoomParticipant,
    create_participant,
    processor_for_call,
)
from sipbridge.room.endings import EndReason
from sipbridge.room.token import LiveKitCredentials
from sipbridge.sip import CallEnded, CallFailed, CallProgress, DtmfReceived, MediaParams, MediaSession, MediaUpdated
from sipbridge.sip.endpoint import SipCall
from sipbridge.sip.message import REASONS
from sipbridge.stats import (
    CallStats,
    Termination,
    client_error,
    indeterminate,
    server_error,
    status_label,
    success,
)

DEFAULT_ROOM_RATE = 16000
"""Room-side rate when the codec is not known when the participant joins."""
DTMF_PAUSE = 0.5
"""What a 'w' in a DTMF string waits, as LiveKit does."""
REPORT_TIMEOUT = 2.0
"""How long a call waits for its state report to be taken."""
_FINAL_STATES = (SIPCallStatus.SCS_DISCONNECTED, SIPCallStatus.SCS_ERROR)


class CallEnd(Exception):
    """Raised inside a flow to stop it; ``reason`` goes to the log, ``termination`` to the metrics."""

    def __init__(self, reason: str, termination: Termination) -> None:
        super().__init__(reason)
        self.reason = reason
        self.termination = termination


_ROOM_ENDINGS = {
    EndReason.LEFT: success("removed"),
    EndReason.REMOVED: success("removed"),
    EndReason.ROOM_DELETED: success("removed"),
    EndReason.REPLACED: client_error("duplicate-identity"),
    EndReason.SERVER_SHUTDOWN: server_error("server-shutdown"),
    EndReason.CONNECTION_LOST: server_error("room-disconnected"),
}


def room_ending(reason: EndReason | None) -> Termination:
    """The metrics' word for why the participant left its room (as the Go service sorts LiveKit's reasons)."""
    return _ROOM_ENDINGS.get(reason, server_error("room-disconnected")) if reason else server_error("room-disconnected")


class BridgedCall:
    """One call's RTP session, audio and room participant, and what happens to them until the call ends."""

    sip: SipCall | None
    """The SIP leg (None for an outbound call until its INVITE is sent)."""
    direction: int = SIPCallDirection.SCD_UNKNOWN

    def __init__(self, services: CallServices, lk_call_id: str, log: CallLog, stats: CallStats) -> None:
        self.services = services
        self.stats = stats
        self.lk_call_id = lk_call_id
        self.log = log
        self.sip = None
        self.rtp: RtpSession | None = None
        self.audio: CallAudio | None = None
        self.participant: RoomParticipant | None = None
        self.media: MediaSession | None = None
        self.media_config: SIPMediaConfig | None = None
        self._media_lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._hangup_asked: asyncio.Future[Mapping[str, str]] = asyncio.get_running_loop().create_future()
        """Set by an agent's ``lk.sip.EndCall``: the headers for our BYE."""
        self._tasks: list[asyncio.Task[object]] = []
        self._transferring = False
        self._created_ns = time.time_ns()
        self._started_ns = 0
        outbound = self.direction == SIPCallDirection.SCD_OUTBOUND
        self.summary = CallSummary(lk_call_id, "outbound" if outbound else "inbound")
        """What the inspector shows of the call (its trace's summary once claimed)."""
        self.trace: CallTrace | None = None
        self._quality: QualityWatch | None = None
        self._leg_changed = asyncio.Event()  # another SIP leg took this call's place (RFC 3891 Replaces)

    @property
    def room_name(self) -> str:
        return self.participant.spec.room if self.participant is not None else ""

    @property
    def identity(self) -> str:
        return self.participant.spec.identity if self.participant is not None else ""

    # -- media -------------------------------------------------------------------------------------------------

    async def _open_rtp(self) -> MediaSession:
        """An RTP port and our side of offer/answer on it. Raises media.ports.PortsExhausted."""
        services = self.services
        self.rtp = await RtpSession.open(services.ports, services.rtp_bind_host)
        encryption = self.media_config.encryption if self.media_config is not None else 0
        self.media = MediaSession(
            services.sdp_address,
            self.rtp.local_port,
            codecs=codecs_for(self.media_config, services.codecs),
            encryption=sdp_encryption(encryption),
        )
        return self.media

    def _attach_audio(self, room_rate: int) -> None:
        """The call's audio between the RTP session and the room, the room side at `room_rate`."""
        assert self.rtp is not None
        self.audio = CallAudio(room_rate)
        self._hook(self.rtp)

    def _hook(self, rtp: RtpSession) -> None:
        """Connect an RTP session to the call's audio, DTMF and media-loss handling."""
        assert self.audio is not None
        rtp.source = self.audio.next_frame_for_phone
        rtp.sink = self.audio.from_phone
        rtp.on_digit = self._digit_from_phone
        rtp.on_media_lost = self._on_media_lost

    def rtp_packets(self) -> dict[tuple[str, str], int]:
        """The call's RTP packets so far by (op, payload name), for the metrics."""
        return self.rtp.packet_counts() if self.rtp is not None else {}

    def _start_media(self, params: MediaParams) -> None:
        assert self.rtp is not None and self.audio is not None
        config = stream_config(params, self._media_timeout(), self.services.config.media_timeout_initial)
        self.summary.codec = params.codec.name
        if self._quality is None:
            self._quality = QualityWatch(self, self.services.traces, time.monotonic())
            self._tasks.append(asyncio.create_task(self._quality.run(time.monotonic)))
        self.rtp.start(
            config,
            (params.remote_address, params.remote_port),
            signalling_host=self.sip.peer_host if self.sip is not None else None,
            learn_any=self._learns_any_source(params),
        )
        self.audio.set_codec_rate(sample_rate(params))
        self.log.info(
            "media: %s/%d pt %d to %s:%d%s",
            params.codec.name, params.codec.clock_rate, params.payload_type, params.remote_address,
            params.remote_port, " (SRTP)" if params.srtp else "",
        )  # fmt: skip

    def _learns_any_source(self, params: MediaParams) -> bool:
        """Whether any address may latch the call's RTP early on: ``symmetric_rtp``, or ``ignore_local_addr_in_sdp``
        with a private address in the peer's SDP (a phone behind NAT that does not know its public address)."""
        config = self.services.config
        private = is_private_address(params.remote_address)
        return config.symmetric_rtp or (config.ignore_local_addr_in_sdp and private)

    def _media_timeout(self) -> float:
        """The trunk's or rule's ``media.media_timeout`` when set, else the bridge default."""
        media = self.media_config
        if media is not None and media.HasField("media_timeout") and media.media_timeout.ToTimedelta():
            return float(media.media_timeout.ToTimedelta().total_seconds())
        return self.services.config.media_timeout

    def _on_media_lost(self, reason: str) -> None:
        if not self._media_lost.done():
            self._media_lost.set_result(reason)

    # -- room --------------------------------------------------------------------------------------------------

    async def _join_room(
        self,
        spec: ParticipantSpec,
        *,
        krisp_enabled: bool,
        credentials: LiveKitCredentials | None = None,
        token: str = "",
    ) -> None:
        """Join as the call's participant and start sending the caller's audio. Raises RoomConnectError."""
        assert self.audio is not None
        self.log.identify(room=spec.room, participant=spec.identity)
        self.summary.room, self.summary.participant = spec.room, spec.identity
        self.summary.status = spec.attributes.get(CALL_STATUS_ATTRIBUTE, "")
        rate = self.audio.room_rate
        self.participant = create_participant(
            self.services.config.room_transport,
            credentials or self.services.livekit,
            spec,
            self.audio,
            publish_rate=rate,
            subscribe_rate=rate,
            processor=processor_for_call(krisp_enabled, rate),
            on_dtmf=self._digit_from_room,
            token=token,
            call_id=self.lk_call_id,
        )
        await self.participant.join()
        participant_rpc.register(self.participant, self._remote_headers, self._end_call_by_rpc)
        self.stats.joined()
        self._tasks.append(asyncio.create_task(self.audio.pump_to_room(self.participant)))
        self._tasks.append(asyncio.create_task(self._report(SIPCallStatus.SCS_PARTICIPANT_JOINED)))
        self.services.registry.add(self)
        status = spec.attributes.get(CALL_STATUS_ATTRIBUTE, "")
        self.log.info("joined room %r as %r (sip.callStatus %s)", spec.room, spec.identity, status)

    def _remote_headers(self) -> Iterable[tuple[str, str]]:
        """The other side's SIP headers (``lk.sip.GetRemoteHeaders``): the flows say which message holds them."""
        return ()

    async def _end_call_by_rpc(self, headers: Mapping[str, str]) -> None:
        """``lk.sip.EndCall``: the call hangs up, its BYE carrying ``headers``."""
        self.log.info("hanging up at the room's request (lk.sip.EndCall)")
        if not self._hangup_asked.done():
            self._hangup_asked.set_result(dict(headers))

    async def _set_status(self, status: CallStatus) -> None:
        self.summary.status = status
        if self.participant is not None:
            await self.participant.set_call_status(status)
        if status == "active":
            self._became_active()

    def _became_active(self) -> None:
        self._started_ns = time.time_ns()
        self._tasks.append(asyncio.create_task(self._report(SIPCallStatus.SCS_ACTIVE)))

    async def _report(self, status: int, error: str = "") -> None:
        """Tell `services.report_state` (if any) where the call stands; a failure to report only gets logged."""
        report = self.services.report_state
        if report is None:
            return
        info = SIPCallInfo(
            call_id=self.lk_call_id,
            sip_call_id=self.sip.call_id if self.sip is not None else "",
            room_name=self.room_name,
            participant_identity=self.identity,
            call_direction=self.direction,  # type: ignore[arg-type]
            call_status=status,  # type: ignore[arg-type]
            created_at_ns=self._created_ns,
            started_at_ns=self._started_ns,
            ended_at_ns=time.time_ns() if status in _FINAL_STATES else 0,
            error=error,
        )
        try:
            await asyncio.wait_for(report(info), REPORT_TIMEOUT)
        except Exception as exc:
            self.log.debug("could not report call state: %s", exc)

    # -- the call ----------------------------------------------------------------------------------------------

    def _start_tasks_for_sip_events(self) -> None:
        if not any(t.get_name() == "sip-events" for t in self._tasks):
            self._tasks.append(asyncio.create_task(self._sip_events(), name="sip-events"))

    async def _sip_events(self) -> None:
        assert self.sip is not None
        async for event in self.sip.events():
            if isinstance(event, DtmfReceived):
                self._digit_from_phone(event.digit)
            elif isinstance(event, CallProgress):
                self._on_progress(event)
            elif isinstance(event, MediaUpdated):
                self._start_media(event.media)
            elif isinstance(event, CallEnded):
                return

    def _on_progress(self, event: CallProgress) -> None:
        """A provisional response to our INVITE (outbound calls)."""

    async def _in_call(self, max_call_duration: float | None) -> None:
        """Hold the call until the phone, the room, the media or the duration limit ends it; raises CallEnd. A
        replacement leg (``replace_leg``) takes over the phone side without ending it."""
        assert self.participant is not None and self.sip is not None
        # LiveKit caps a call at 24 h whatever the trunk or request says.
        limit = min(max_call_duration or DEFAULT_MAX_CALL_DURATION, DEFAULT_MAX_CALL_DURATION)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            self._leg_changed.clear()
            outcome = await first(
                {
                    "phone": self.sip.wait_ended(),
                    "room": self.participant.wait_ended(),
                    "media": asyncio.shield(self._media_lost),
                    "rpc": asyncio.shield(self._hangup_asked),
                    "replaced": self._leg_changed.wait(),
                },
                max(0.0, deadline - loop.time()),
            )
            if outcome != "replaced" and not (outcome == "phone" and self._leg_changed.is_set()):
                break
        if outcome == "rpc":
            await self.sip.bye(self._hangup_asked.result())
            raise CallEnd("hung up by the room (lk.sip.EndCall): sent BYE", success("rpc"))
        if outcome == "phone":
            ended = await self.sip.wait_ended()
            raise CallEnd(f"the phone side ended the call ({ended.reason})", success("hangup"))
        if outcome == "room":
            reason = self.participant.end_reason
            await self.sip.bye()
            why = f"participant left the room ({reason.value if reason else 'unknown'}): sent BYE"
            raise CallEnd(why, room_ending(reason))
        await self.sip.bye()
        if outcome == "timeout":
            raise CallEnd("max_call_duration reached: sent BYE", success("max-call-duration"))
        raise CallEnd(f"media {self._media_lost.result()}: sent BYE", indeterminate("media-timeout"))

    # -- replacement (RFC 3891) --------------------------------------------------------------------------------

    async def replace_leg(
        self, sip: SipCall, rtp: RtpSession, media: MediaSession, params: MediaParams, attributes: dict[str, str]
    ) -> None:
        """An answered INVITE with Replaces takes this call's place: its RTP session carries the call's audio from
        now on, the participant stays (its ``attributes`` updated), and the replaced leg gets BYE."""
        old_sip, old_rtp = self.sip, self.rtp
        self.sip, self.rtp, self.media = sip, rtp, media
        self._hook(rtp)
        self._start_media(params)
        self._tasks.append(asyncio.create_task(self._sip_events(), name=f"sip-events-{sip.call_id}"))
        self._leg_changed.set()
        self.log.identify(sipCallID=sip.call_id)
        self.log.info("replaced: %s takes over from %s", sip.call_id, old_sip.call_id if old_sip else "-")
        if old_rtp is not None:
            old_rtp.on_media_lost = lambda reason: None
            await old_rtp.close()
        if old_sip is not None and not old_sip.ended:
            self._tasks.append(asyncio.create_task(old_sip.bye(), name=f"bye-{old_sip.call_id}"))
        if self.participant is not None and attributes:
            await self.participant.update_attributes(attributes)

    # -- transfer ----------------------------------------------------------------------------------------------

    async def transfer(
        self, target: str, *, play_dialtone: bool, headers: Mapping[str, str], within: float
    ) -> TransferDone:
        """Cold transfer by REFER to `target` (a sip:, sips: or tel: URI). On success our leg ends and the
        participant leaves; otherwise CallError with the SIP status, and the call goes on."""
        sip, audio = self.sip, self.audio
        if sip is None or audio is None or sip.ended:
            raise CallError("failed_precondition", f"call {self.lk_call_id} is not established")
        if self._transferring:
            raise CallError("failed_precondition", f"call {self.lk_call_id} is already being transferred")
        self._transferring = True
        transfer_id = new_id(SIP_TRANSFER_PREFIX)
        self.log.info("transferring to %s (%s)", target, transfer_id)
        stats, direction = self.services.stats, self.stats.direction
        stats.transfer_started(direction)
        failure_label: str | None = "unknown"
        if play_dialtone:
            audio.play(dial_tone(audio.codec_rate), loop=True)
        try:
            async with asyncio.timeout(within):
                progress = await sip.refer(target, headers=dict(headers))
            failure_label = (
                None if progress.succeeded else status_label(progress.status, REASONS.get(progress.status, ""))
            )
        except TimeoutError:
            failure_label = "timeout"
            raise CallError.from_sip_status(408, "Request Timeout") from None
        except CallFailed as failure:
            failure_label = "call-ended"
            raise CallError("aborted", f"the call ended during the transfer: {failure}") from None
        finally:
            self._transferring = False
            stats.transfer_ended(direction, failure_label)
            if play_dialtone:
                audio.stop_playing()
        if not progress.succeeded:
            self.log.info("transfer to %s failed: %d", target, progress.status)
            raise CallError.from_sip_status(progress.status, "")
        self.log.info("transferred to %s", target)
        await self._set_status("hangup")
        await sip.bye()
        return TransferDone(transfer_id, progress.status, REASONS.get(progress.status, ""))

    # -- DTMF --------------------------------------------------------------------------------------------------

    def _digit_from_phone(self, digit: str) -> None:
        if self.participant is not None and self.participant.end_reason is None:
            self.log.debug("DTMF %s from the phone", digit)
            self._tasks.append(asyncio.create_task(self.participant.send_dtmf(digit)))

    def _digit_from_room(self, digit: str) -> None:
        if self.rtp is not None:
            self.log.debug("DTMF %s to the phone", digit)
            self.rtp.send_digits(digit)

    async def _send_digit_string(self, digits: str) -> None:
        """Key presses to the phone in order; each 'w' waits half a second."""
        assert self.rtp is not None
        for part in re.split("(w)", digits.lower()):
            if part == "w":
                await asyncio.sleep(DTMF_PAUSE)
            elif part:
                self.rtp.send_digits(part)
                while self.rtp.sending_digits:  # noqa: ASYNC110 (the media cadence drains it; no event)
                    await asyncio.sleep(0.02)

    # -- teardown ----------------------------------------------------------------------------------------------

    async def _release(self, error: str = "") -> None:
        self.services.registry.discard(self)
        if self.participant is not None:
            self.summary.status = "hangup"
        if self.participant is not None:
            await self._report(SIPCallStatus.SCS_ERROR if error else SIPCallStatus.SCS_DISCONNECTED, error)
        for task in self._tasks:
            await cancel_task(task)
        if self.participant is not None:
            if self.participant.end_reason is None:
                with contextlib.suppress(Exception):
                    await self.participant.set_call_status("hangup")
            await self.participant.leave()
        if self._quality is not None:
            self._quality.sample(time.monotonic())  # the last seconds (or a call shorter than one interval)
        if self.rtp is not None:
            await self.rtp.close()
        if self.sip is not None and not self.sip.ended:
            with contextlib.suppress(Exception):
                await self.sip.bye()
        self._end_trace()

    # -- inspector ---------------------------------------------------------------------------------------------

    def _claim_trace(self, call_id: str) -> None:
        """Take this call's trace (its SIP messages so far): the inspector shows it with `summary`."""
        self.trace = self.services.traces.claim(call_id, self.summary)

    def _mask_in_trace(self, secret: str) -> None:
        """Keep ``secret`` (a digest password) out of the trace, in the messages so far and the ones to come."""
        if self.trace is not None:
            self.trace.add_secret(secret)

    def _end_trace(self) -> None:
        if self.trace is not None:
            self.services.traces.end(self.trace)


async def first(waiters: Mapping[str, Awaitable[object]], limit: float | None) -> str:
    """The name of the first awaitable to finish, or "timeout"; the others are cancelled."""
    futures = {asyncio.ensure_future(w): name for name, w in waiters.items()}
    try:
        done, _ = await asyncio.wait(futures, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
    if not done:
        return "timeout"
    return futures[next(iter(done))]


def sample_rate(params: MediaParams) -> int:
    """The audio rate of the negotiated codec (16 kHz for G.722, although its RTP clock says 8 kHz)."""
    return KNOWN_CODECS[params.codec.name.lower()].sample_rate


def reason_header(status: int, text: str) -> str:
    """RFC 3326 Reason header (``SIP;cause=404;text="..."``)."""
    clean = text.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'SIP;cause={status};text="{clean}"'
