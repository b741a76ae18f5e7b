"""An outbound call, from CreateSIPParticipant to hangup: join the room, dial, ring, answer, DTMF, endings.

The participant joins with ``sip.callStatus`` ``dialing`` (playing a dial tone into the room when asked); once the
room has admitted it, while its media connection comes up, the INVITE goes to the trunk's address (digest
credentials when challenged): the callee's phone rings meanwhile, so connecting adds nothing to the post-dial
delay, and a room that refuses us does so before anything is dialled. The first 18x makes the status ``ringing``
and early media in it (a carrier's ringback or announcement) is played into the room, the answer starts media,
the request's DTMF string is sent (status ``automation``), then the status is ``active``. A media connection that
fails cancels the INVITE; a failure before the answer ends the participant; the caller of `start()` learns either
as a CallError with the SIP status when it waits for the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livekit.protocol.sip import SIPCallDirection

from dispatch.evaluate import ATTR_CALL_ID_FULL, ATTR_CALL_STATUS, ATTR_CALL_TAG
from dispatch.outbound import OutboundPlan
from sipbridge.calls.bridged import BridgedCall
from sipbridge.calls.endings import CallEnd
from sipbridge.calls.errors import CallError
from sipbridge.calls.media_link import offered_codecs
from sipbridge.calls.seams import CalleeLeg, Dialler, PhoneLeg
from sipbridge.calls.services import CallLog, CallServices
from sipbridge.calls.waiting import cancel_task, first
from sipbridge.media.codecs import KNOWN_CODECS
from sipbridge.media.ports import PortsExhausted
from sipbridge.media.tones import dial_tone
from sipbridge.room import ParticipantSpec, RoomConnectError
from sipbridge.room.token import LiveKitCredentials
from sipbridge.sip import Address, CallFailed, CallProgress, MediaParams, SipParseError
from sipbridge.sip.auth import DigestCredentials
from sipbridge.sip.message import Response
from sipbridge.sip.sdp import parse_sdp
from sipbridge.sip.uri import NameAddr, SipUri, parse_uri
from sipbridge.stats import Termination, client_error, refused_by_peer, server_error, status_label, success

log = logging.getLogger("sipbridge.calls.outbound")
DEFAULT_OUTBOUND_RINGING_TIMEOUT = 30.0
"""How long the callee may ring when the request sets no ``ringing_timeout``: LiveKit's default (livekit-api pins
requests to it)."""


@dataclass(frozen=True)
class CreatedParticipant:
    """What CreateSIPParticipant answers: ``SIPParticipantInfo``'s fields."""

    participant_id: str
    participant_identity: str
    room_name: str
    sip_call_id: str


class OutboundCallFlow(BridgedCall):
    direction = SIPCallDirection.SCD_OUTBOUND

    def __init__(self, services: CallServices, dialler: Dialler, plan: OutboundPlan) -> None:
        stats = services.stats.call("out", plan.address.rpartition(":")[0] if ":" in plan.address else plan.address)
        super().__init__(services, plan.lk_call_id, CallLog(log, {"callID": plan.lk_call_id}), stats)
        self.plan = plan
        self.dialler = dialler
        self.callee: CalleeLeg | None = None
        """The callee's SIP leg, once the INVITE is sent."""
        self.media_config = plan.media
        self._answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._dial_tone: asyncio.Task[None] | None = None
        self._unanswered = False
        """The callee did not answer within the ringing timeout (we cancelled)."""
        self._ringing = False
        self.task: asyncio.Task[None] | None = None
        self.summary.trunk_id = plan.trunk_id
        self.summary.from_number, self.summary.to_number = plan.number, plan.call_to

    @property
    def leg(self) -> PhoneLeg | None:
        return self.callee

    async def start(self) -> CreatedParticipant:
        """Join the room and dial. With ``wait_until_answered`` returns once the callee answered (CallError when
        the call fails), else as soon as the participant is in the room, the call going on in `task`."""
        capacity, plan = self.services.capacity, self.plan
        refusal = capacity.refusal
        if refusal:
            raise CallError("unavailable", refusal)
        capacity.begin(self.lk_call_id)
        try:
            await self._prepare()
        except BaseException:
            await self._release()
            capacity.end(self.lk_call_id)
            self.stats.ended(server_error("participant-failed"))
            raise
        self.task = asyncio.create_task(self._run(), name=f"outbound-{self.lk_call_id}")
        if plan.wait_until_answered:
            await asyncio.shield(self._answered)
        assert self.participant is not None
        return CreatedParticipant(self.participant.sid, plan.participant_identity, plan.room_name, self.lk_call_id)

    async def _prepare(self) -> None:
        plan = self.plan
        self.log.info(
            "calling %s at %s over %s from %s (trunk %s)",
            plan.call_to, plan.address, plan.transport_name, plan.number, plan.trunk_id or "-",
        )  # fmt: skip
        try:
            await self._open_rtp()
        except PortsExhausted:
            raise CallError("unavailable", "no RTP port available") from None
        # The room side runs at the rate of the codec we offer first, the one the callee most likely takes.
        self._attach_audio(KNOWN_CODECS[self.services.codecs[0].lower()].sample_rate)
        attributes = dict(plan.participant_attributes)
        attributes[ATTR_CALL_STATUS] = "dialing"
        spec = ParticipantSpec(
            plan.room_name,
            plan.participant_identity,
            name=plan.participant_name,
            metadata=plan.participant_metadata,
            attributes=attributes,
        )
        credentials = None
        if plan.ws_url:
            default = self.services.livekit
            credentials = LiveKitCredentials(plan.ws_url, default.api_key, default.api_secret)
        participant = self._new_participant(
            spec, krisp_enabled=plan.krisp_enabled, credentials=credentials, token=plan.token
        )
        joining = asyncio.create_task(self._enter_room(), name=f"join-{self.lk_call_id}")
        try:
            # Dial once the room has let the participant in, not once its media is up: the callee rings
            # meanwhile. A room that refuses us refuses before that, and nothing is dialled.
            admitted = asyncio.ensure_future(participant.wait_admitted())
            await asyncio.wait((admitted, joining), return_when=asyncio.FIRST_COMPLETED)
            await cancel_task(admitted, self.log)
            if not joining.done() or joining.exception() is None:
                await self._invite(attributes)
            await joining  # a failure from here on cancels the INVITE (`_release`)
        except RoomConnectError as e:
            raise CallError("unavailable", str(e)) from None
        finally:
            if not joining.done():  # the INVITE could not be sent
                await cancel_task(joining, self.log)

    async def _run(self) -> None:
        error_text = ""
        ending = server_error("other")
        try:
            await self._ring()
            self._settle(None)
            await self._in_call(self.plan.max_call_duration)
        except CallError as error:
            self.log.info("call failed: %s", error)
            error_text = self.summary.ending = error.message
            ending = client_error("no-answer") if self._unanswered else _failed_dial(error)
            self._settle(error)
        except CallEnd as end:
            self.log.info("call ended: %s", end.reason)
            ending = end.termination
            self.summary.ending = end.reason
            self._settle(CallError("aborted", f"the call ended before it was answered: {end.reason}"))
        except CallFailed as failure:
            self.log.info("call ended by the callee or the network: %s", failure)
            ending = success("hangup") if self._answered.done() else server_error("invite-failed")
            self.summary.ending = f"ended by the callee or the network: {failure}"
            self._settle(CallError("aborted", f"the call ended before it was answered: {failure}"))
        finally:
            await self._release(error_text)
            self.services.capacity.end(self.lk_call_id)
            self.stats.ended(ending)

    def _settle(self, error: CallError | None) -> None:
        if self._answered.done():
            return
        if error is None:
            self._answered.set_result(None)
        else:
            self._answered.set_exception(error)
            self._answered.exception()  # nobody may be waiting (no wait_until_answered)

    async def _invite(self, attributes: Mapping[str, str]) -> None:
        """Send the INVITE; `attributes` are the participant's (some may be sent as headers)."""
        plan, offer_answer = self.plan, self.offer_answer
        assert offer_answer is not None
        addressing = plan.addressing(self.dialler.local_host)
        credentials = DigestCredentials(plan.username, plan.password) if plan.username else None
        headers = plan.invite_headers(attributes)
        # The INVITE goes to the trunk's address whatever the Request-URI names (sip_request_uri may name
        # another host: the trunk is the next hop), at the targets RFC 3263 finds for it, best first.
        targets = await self._targets()
        self.callee = callee = self.dialler.place_call(
            addressing.request_uri,
            offer_answer,
            from_uri=addressing.from_,
            display_name=addressing.from_display,
            to=NameAddr(parse_uri(addressing.to), addressing.to_display),
            destination=targets[0],
            alternatives=targets[1:],
            transport=plan.transport_name,
            credentials=credentials,
            headers=headers,
            client_cert=self._client_cert(),
        )
        self.log.identify(sipCallID=callee.call_id)
        self._claim_trace(callee.call_id)
        self._mask_in_trace(plan.password)
        self.stats.invite_sent()
        self.stats.started(self.rtp_packets)

    async def _ring(self) -> None:
        """From the INVITE sent and the room joined to the answer (or the end before it)."""
        plan, audio, callee, participant = self.plan, self.audio, self.callee, self.participant
        assert audio is not None and callee is not None and participant is not None
        if plan.play_dialtone and callee.final_response is None:
            self._dial_tone = asyncio.create_task(audio.play_to_room(dial_tone(audio.room_rate)), name="dial-tone")
        self._follow_sip_events(callee)  # what came while we joined (18x, early media) is queued in order
        ringing = plan.ringing_timeout or DEFAULT_OUTBOUND_RINGING_TIMEOUT
        rpc = asyncio.shield(self._hangup_asked)
        waiters = {"answered": callee.wait_answered(), "room": participant.wait_ended(), "rpc": rpc}
        outcome = await first(waiters, ringing)
        await cancel_task(self._dial_tone, self.log)
        if outcome == "timeout":
            await callee.bye()  # CANCEL
            self._unanswered = True
            raise CallError.from_sip_status(408, "Request Timeout")
        if outcome == "room":
            await callee.bye()
            raise CallEnd("participant left the room while dialing: sent CANCEL", client_error("canceled"))
        if outcome == "rpc":
            await callee.bye()
            raise CallEnd("hung up by the room while dialing (lk.sip.EndCall): sent CANCEL", success("rpc"))
        try:
            params = await callee.wait_answered()
        except CallFailed as failure:
            response = callee.final_response
            status = failure.status or 500
            refusal = response if response is not None and response.status == status else None
            reason = refusal.reason if refusal is not None else ""
            self.stats.invite_failed(status_label(status, reason))
            if failure.detail:  # the carrier could not be reached: say which trunk and why
                text = f"trunk {plan.trunk_id or plan.address}: {failure.detail}"
                raise CallError.from_sip_status(status, reason, text) from None
            raise _refused(status, refusal) from None
        self.stats.accepted()
        self._count_answer_sdp(callee.final_response.body if callee.final_response is not None else b"")
        self._on_answered(params)
        answered = {ATTR_CALL_ID_FULL: callee.call_id, **self._answer_attributes()}
        response = callee.final_response
        if response is not None and response.to.tag:
            answered[ATTR_CALL_TAG] = response.to.tag
        await participant.update_attributes(answered)
        if plan.dtmf:
            await self._set_status("automation")
            await self._send_digit_string(plan.dtmf)
        await self._set_status("active")
        self.log.info("answered")

    def _remote_headers(self) -> Iterable[tuple[str, str]]:
        """The callee's 200 OK's headers (none before it answered)."""
        response = self.callee.final_response if self.callee is not None else None
        return response.headers if response is not None and 200 <= response.status < 300 else ()

    def _count_answer_sdp(self, body: bytes) -> None:
        try:
            codecs = offered_codecs(parse_sdp(body)) if body else []
        except SipParseError:
            codecs = []  # offer/answer took it, so it parsed there; nothing to count if not
        self.stats.sdp(None, body, codecs)

    async def _targets(self) -> list[Address]:
        """Where the INVITE may go, best first: the trunk's address (or the first outbound Route, when
        ``outbound_route_headers`` preloads some) resolved by RFC 3263 (NAPTR when the transport is automatic,
        SRV, then A/AAAA)."""
        plan = self.plan
        explicit = plan.transport_name if plan.transport else None
        where = plan.address
        targets: list[Address] = []
        try:
            trunk = parse_uri(f"sip:{plan.address}")
            hop = self.dialler.next_hop(trunk) if isinstance(trunk, SipUri) else trunk
            if hop is not trunk:
                where = f"{plan.address} (by the route {hop})"
            if isinstance(hop, SipUri):
                targets = await self.dialler.resolve(hop, explicit)
        except SipParseError:
            pass
        if not targets:
            text = f"trunk {plan.trunk_id or plan.address}: cannot resolve {where!r}"
            raise CallError.from_sip_status(503, "Service Unavailable", text)
        if len(targets) > 1:
            self.log.info("trunk address %s: targets %s", where, ", ".join(_target(t) for t in targets))
        return targets

    def _client_cert(self) -> tuple[str, str] | None:
        """The certificate configured for this trunk (mutual TLS), if one is named for it."""
        tls = self.services.config.tls
        return tls.client_cert_for(self.plan.trunk_id) if tls is not None else None

    def _on_answered(self, params: MediaParams) -> None:
        assert self.audio is not None
        self.audio.discard_caller_audio()  # early media still queued for the room
        self._start_media(params)

    def _answer_attributes(self) -> dict[str, str]:
        assert self.callee is not None
        response = self.callee.final_response
        return self.plan.answer_attributes(list(response.headers)) if response is not None else {}

    def _on_progress(self, event: CallProgress) -> None:
        """18x: the callee rings; with SDP, its early media (ringback, announcements) goes into the room."""
        if not self._ringing:
            self._ringing = True
            self._tasks.append(asyncio.create_task(self._set_status("ringing"), name="ringing"))
        if event.media is not None:
            self._tasks.append(asyncio.create_task(cancel_task(self._dial_tone, self.log), name="dial-tone-off"))
            self._start_media(event.media)


_EXPLAINED_REFUSALS = frozenset({400, 404, 480, 486, 488})
"""Refusals livekit/sip reports as "INVITE failed", with the body (or X-Twilio-Error) as their text when given."""


def _refused(status: int, response: Response | None) -> CallError:
    """The callee's final refusal as livekit/sip reports it: ``INVITE failed: sip status: 486: Busy Here`` for
    the refusals that explain themselves, ``unexpected status from INVITE response: ...`` for the others."""
    reason = response.reason if response is not None else ""
    if status not in _EXPLAINED_REFUSALS:
        return CallError.from_sip_status(status, reason, context="unexpected status from INVITE response: ")
    if response is not None and response.body:
        reason = response.body.decode(errors="replace")
    elif response is not None and (twilio := response.headers.get("X-Twilio-Error")):
        reason = twilio
    return CallError.from_sip_status(status, reason, context="INVITE failed: ")


def _failed_dial(error: CallError) -> Termination:
    """How the metrics name a dial that failed: by the callee's refusal, else as a failed INVITE."""
    if error.sip_status is not None:
        return refused_by_peer(error.sip_status, error.sip_reason)
    return server_error("invite-failed")


def _target(peer: Address) -> str:
    return f"{peer.transport.lower()}:{peer.host}:{peer.port}"
