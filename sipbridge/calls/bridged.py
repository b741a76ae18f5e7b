"""What every call does once it has a SIP leg and a room participant, whichever side dialled.

`BridgedCall` owns a call's RTP session, its audio and its participant: it opens them, starts media when offer/answer
settles, carries DTMF both ways, holds the call until someone ends it, transfers it (REFER), and releases everything
on every way out.
`InboundCallFlow` and `OutboundCallFlow` add how the call starts.
The layers below are reached through `sipbridge.calls.seams` only.
"""

from __future__ import annotations

import abc
import asyncio
import re
import time
from collections.abc import Iterable, Mapping

from livekit.protocol.sip import SIPCallDirection, SIPCallInfo, SIPCallStatus, SIPMediaConfig

from sipbridge.calls import participant_rpc
from sipbridge.calls.audio import CallAudio
from sipbridge.calls.endings import CallEnd, room_ending
from sipbridge.calls.errors import CallError
from sipbridge.calls.media_link import codecs_for, sdp_encryption, stream_config
from sipbridge.calls.quality_watch import QualityWatch
from sipbridge.calls.registry import TransferDone
from sipbridge.calls.seams import CallParticipant, PhoneLeg, PhoneRtp
from sipbridge.calls.services import DEFAULT_MAX_CALL_DURATION, CallLog, CallServices
from sipbridge.calls.waiting import cancel_task, first
from sipbridge.ids import SIP_TRANSFER_PREFIX, new_id
from sipbridge.inspector.trace import CallSummary, CallTrace
from sipbridge.media.codecs import KNOWN_CODECS
from sipbridge.media.tones import dial_tone
from sipbridge.netaddr import is_private_address
from sipbridge.room import CALL_STATUS_ATTRIBUTE, CallStatus, ParticipantSpec
from sipbridge.room.token import LiveKitCredentials
from sipbridge.sip import CallEnded, CallFailed, CallProgress, DtmfReceived, MediaParams, MediaSession, MediaUpdated
from sipbridge.sip.message import REASONS
from sipbridge.stats import CallStats, indeterminate, status_label, success

DEFAULT_ROOM_RATE = 16000
"""Room-side rate when the codec is not known when the participant joins."""
DTMF_PAUSE = 0.5
"""What a 'w' in a DTMF string waits, as LiveKit does."""
REPORT_TIMEOUT = 2.0
"""How long a call waits for its state report to be taken."""
_FINAL_STATES = (SIPCallStatus.SCS_DISCONNECTED, SIPCallStatus.SCS_ERROR)


class BridgedCall(abc.ABC):
    """One call's RTP session, audio and room participant, and what happens to them until the call ends."""

    direction: int = SIPCallDirection.SCD_UNKNOWN

    def __init__(self, services: CallServices, lk_call_id: str, log: CallLog, stats: CallStats) -> None:
        self.services = services
        self.stats = stats
        self.lk_call_id = lk_call_id
        self.log = log
        self.rtp: PhoneRtp | None = None
        self.audio: CallAudio | None = None
        self.participant: CallParticipant | None = None
        self.offer_answer: MediaSession | None = None
        """Our side of SDP offer/answer, on the RTP session's port."""
        self.media_config: SIPMediaConfig | None = None
        """The trunk's, rule's or request's media settings (encryption, codecs, media timeout)."""
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
    @abc.abstractmethod
    def leg(self) -> PhoneLeg | None:
        """The SIP leg this flow carries now (None before an outbound call's INVITE, or once handed over)."""

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
        self.rtp = await services.open_rtp()
        encryption = self.media_config.encryption if self.media_config is not None else 0
        self.offer_answer = MediaSession(
            services.sdp_address,
            self.rtp.local_port,
            codecs=codecs_for(self.media_config, services.codecs),
            encryption=sdp_encryption(encryption),
        )
        return self.offer_answer

    def _attach_audio(self, room_rate: int) -> None:
        """The call's audio between the RTP session and the room, the room side at `room_rate`."""
        assert self.rtp is not None
        self.audio = CallAudio(room_rate)
        self._hook(self.rtp)

    def _hook(self, rtp: PhoneRtp) -> None:
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
        node = self.services.config
        config = stream_config(params, self._media_timeout(), node.media_timeout_initial, dtmf_audio=node.audio_dtmf)
        self.summary.codec = params.codec.name
        if self._quality is None:
            self._quality = QualityWatch(self, self.services.traces, time.monotonic())
            self._tasks.append(asyncio.create_task(self._quality.run(time.monotonic)))
        leg = self.leg
        self.rtp.start(
            config,
            (params.remote_address, params.remote_port),
            signalling_host=leg.peer_host if leg is not None else None,
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
        self._new_participant(spec, krisp_enabled=krisp_enabled, credentials=credentials, token=token)
        await self._enter_room()

    def _new_participant(
        self,
        spec: ParticipantSpec,
        *,
        krisp_enabled: bool,
        credentials: LiveKitCredentials | None = None,
        token: str = "",
    ) -> CallParticipant:
        """The call's participant, not yet joined (`_enter_room` joins it)."""
        assert self.audio is not None
        self.log.identify(room=spec.room, participant=spec.identity)
        self.summary.room, self.summary.participant = spec.room, spec.identity
        self.summary.status = spec.attributes.get(CALL_STATUS_ATTRIBUTE, "")
        self.participant = self.services.participants(
            spec,
            self.audio,
            credentials=credentials or self.services.livekit,
            rate=self.audio.room_rate,
            krisp_enabled=krisp_enabled,
            on_dtmf=self._digit_from_room,
            token=token,
            call_id=self.lk_call_id,
        )
        return self.participant

    async def _enter_room(self) -> None:
        """Join the room as `_new_participant` and start sending the caller's audio. Raises RoomConnectError."""
        assert self.audio is not None and self.participant is not None
        spec = self.participant.spec
        await self.participant.join()
        participant_rpc.register(self.participant, self._remote_headers, self._end_call_by_rpc)
        self.stats.joined()
        self._tasks.append(asyncio.create_task(self.audio.pump_to_room(self.participant), name="to-room"))
        self._tasks.append(asyncio.create_task(self._report(SIPCallStatus.SCS_PARTICIPANT_JOINED), name="report"))
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
        """``sip.callStatus`` in the room; ``active`` also starts the call's clock for the reports."""
        self.summary.status = status
        if self.participant is not None:
            await self.participant.set_call_status(status)
        if status == "active":
            self._became_active()

    def _became_active(self) -> None:
        self._started_ns = time.time_ns()
        self._tasks.append(asyncio.create_task(self._report(SIPCallStatus.SCS_ACTIVE), name="report"))

    async def _report(self, status: int, error: str = "") -> None:
        """Tell `services.report_state` (if any) where the call stands; a failure to report only gets logged."""
        report = self.services.report_state
        if report is None:
            return
        leg = self.leg
        info = SIPCallInfo(
            call_id=self.lk_call_id,
            sip_call_id=leg.call_id if leg is not None else "",
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
            self.log.warning("could not report call state %s: %r", SIPCallStatus.Name(status), exc)

    # -- the call ----------------------------------------------------------------------------------------------

    def _follow_sip_events(self, leg: PhoneLeg) -> None:
        """Carry the leg's in-dialog events (DTMF, re-INVITEs, progress) into the call until the leg ends."""
        name = f"sip-events-{leg.call_id}"
        if not any(t.get_name() == name for t in self._tasks):
            self._tasks.append(asyncio.create_task(self._sip_events(leg), name=name))

    async def _sip_events(self, leg: PhoneLeg) -> None:
        async for event in leg.events():
            if isinstance(event, DtmfReceived):
                self._digit_from_phone(event.digit)
            elif isinstance(event, CallProgress):
                self._on_progress(event)
            elif isinstance(event, MediaUpdated):
                self._start_media(event.media)
            elif isinstance(event, CallEnded):
                return

    def _on_progress(self, event: CallProgress) -> None:  # noqa: B027 (only outbound calls get provisionals)
        """A provisional response to our INVITE (outbound calls)."""

    async def _in_call(self, max_call_duration: float | None) -> None:
        """Hold the call until the phone, the room, the media or the duration limit ends it; raises CallEnd. A
        replacement leg (``replace_leg``) takes over the phone side without ending it."""
        assert self.participant is not None
        # LiveKit caps a call at 24 h whatever the trunk or request says.
        limit = min(max_call_duration or DEFAULT_MAX_CALL_DURATION, DEFAULT_MAX_CALL_DURATION)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            leg = self.leg
            assert leg is not None
            self._leg_changed.clear()
            outcome = await first(
                {
                    "phone": leg.wait_ended(),
                    "room": self.participant.wait_ended(),
                    "media": asyncio.shield(self._media_lost),
                    "rpc": asyncio.shield(self._hangup_asked),
                    "replaced": self._leg_changed.wait(),
                },
                max(0.0, deadline - loop.time()),
            )
            if outcome != "replaced" and not (outcome == "phone" and self._leg_changed.is_set()):
                break
        leg = self.leg
        assert leg is not None
        if outcome == "rpc":
            await leg.bye(self._hangup_asked.result())
            raise CallEnd("hung up by the room (lk.sip.EndCall): sent BYE", success("rpc"))
        if outcome == "phone":
            ended = await leg.wait_ended()
            raise CallEnd(f"the phone side ended the call ({ended.reason})", success("hangup"))
        if outcome == "room":
            reason = self.participant.end_reason
            await leg.bye()
            why = f"participant left the room ({reason.value if reason else 'unknown'}): sent BYE"
            raise CallEnd(why, room_ending(reason))
        await leg.bye()
        if outcome == "timeout":
            raise CallEnd("max_call_duration reached: sent BYE", success("max-call-duration"))
        raise CallEnd(f"media {self._media_lost.result()}: sent BYE", indeterminate("media-timeout"))

    def _changed_leg(self, old_leg: PhoneLeg | None, old_rtp: PhoneRtp | None) -> None:
        """The subclass put another leg and RTP session in place (RFC 3891 Replaces): follow them and let the
        old ones go (the old leg gets BYE; its session is closed by the caller)."""
        leg, rtp = self.leg, self.rtp
        assert leg is not None and rtp is not None
        self._hook(rtp)
        self._follow_sip_events(leg)
        self._leg_changed.set()
        self.log.identify(sipCallID=leg.call_id)
        self.log.info("replaced: %s takes over from %s", leg.call_id, old_leg.call_id if old_leg else "-")
        if old_rtp is not None:
            old_rtp.on_media_lost = None
        if old_leg is not None and not old_leg.ended:
            self._tasks.append(asyncio.create_task(old_leg.bye(), name=f"bye-{old_leg.call_id}"))

    # -- transfer ----------------------------------------------------------------------------------------------

    async def transfer(
        self, target: str, *, play_dialtone: bool, headers: Mapping[str, str], within: float
    ) -> TransferDone:
        """Cold transfer by REFER to `target` (a sip:, sips: or tel: URI). On success our leg ends and the
        participant leaves; otherwise CallError with the SIP status, and the call goes on."""
        leg, audio = self.leg, self.audio
        if leg is None or audio is None or leg.ended:
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
                progress = await leg.refer(target, headers=dict(headers))
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
        await leg.bye()
        return TransferDone(transfer_id, progress.status, REASONS.get(progress.status, ""))

    # -- DTMF --------------------------------------------------------------------------------------------------

    def _digit_from_phone(self, digit: str) -> None:
        if self.participant is not None and self.participant.end_reason is None:
            self.log.debug("DTMF %s from the phone", digit)
            self._tasks.append(asyncio.create_task(self.participant.send_dtmf(digit), name="dtmf-to-room"))

    def _digit_from_room(self, digit: str) -> None:
        if self.rtp is not None:
            self.log.debug("DTMF %s to the phone", digit)
            self.rtp.send_digits(digit)

    async def _send_digit_string(self, digits: str) -> None:
        """Key presses to the phone in order, each run sent before the next part; each 'w' waits half a second."""
        assert self.rtp is not None
        for part in re.split("(w)", digits.lower()):
            if part == "w":
                await asyncio.sleep(DTMF_PAUSE)
            elif part:
                self.rtp.send_digits(part)
                await self.rtp.wait_digits_sent()

    # -- teardown ----------------------------------------------------------------------------------------------

    async def _release(self, error: str = "") -> None:
        """Let go of everything the call holds, in order: the registry, the state report, helper tasks, the room,
        the RTP port, the SIP leg. A step that fails is logged and the next one still runs."""
        self.services.registry.discard(self)
        if self.participant is not None:
            self.summary.status = "hangup"
            await self._report(SIPCallStatus.SCS_ERROR if error else SIPCallStatus.SCS_DISCONNECTED, error)
        for task in self._tasks:
            await cancel_task(task, self.log)
        if self.participant is not None:
            if self.participant.end_reason is None:
                try:
                    await self.participant.set_call_status("hangup")
                except Exception as exc:
                    self.log.warning("could not set sip.callStatus hangup before leaving: %r", exc)
            await self.participant.leave()
        if self._quality is not None:
            self._quality.sample(time.monotonic())  # the last seconds (or a call shorter than one interval)
        if self.rtp is not None:
            await self.rtp.close()
        leg = self.leg
        if leg is not None and not leg.ended:
            try:
                await leg.bye()
            except Exception as exc:
                self.log.warning("could not hang up the SIP leg %s: %r", leg.call_id, exc)
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


def sample_rate(params: MediaParams) -> int:
    """The audio rate of the negotiated codec (16 kHz for G.722, although its RTP clock says 8 kHz)."""
    return KNOWN_CODECS[params.codec.name.lower()].sample_rate
