"""An inbound call, from INVITE to hangup: admission, PIN, room, media, DTMF, endings.

One `InboundCallFlow` per INVITE owns everything the call allocates (RTP port, room participant, tasks) and
releases all of it on every way out. The decisions (trunk, rule, room, participant) are the node's `Decider`'s; this
module only acts on them, the way LiveKit's Go service does:

* no PIN: ring (180, or 183 with our ringback under ``inbound_early_media``), join the room with
  ``sip.callStatus`` ``ringing``, answer once a remote audio track is subscribed (status ``active``), give up after
  the ringing timeout;
* PIN: answer first, prompt, collect digits up to '#', decide again with the PIN, then join as ``active``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from livekit.protocol.sip import SIPCallDirection, SIPInboundTrunkInfo

from dispatch.call import InviteFacts
from dispatch.decide import Decision, Verdict
from dispatch.evaluate import ATTR_CALL_ID_FULL, ATTR_CALL_STATUS, ATTR_CALL_TAG, ATTR_PHONE_NUMBER, CallDispatch
from sipbridge.calls.admission import admit, reason_header, refuse
from sipbridge.calls.bridged import DEFAULT_ROOM_RATE, BridgedCall, sample_rate
from sipbridge.calls.endings import CallEnd, room_ending
from sipbridge.calls.invite_facts import invite_facts, uri_host, uri_user
from sipbridge.calls.media_link import offered_codecs
from sipbridge.calls.seams import CallerLeg, PhoneLeg, PhoneRtp
from sipbridge.calls.services import DEFAULT_RINGING_TIMEOUT, PIN_MAX_DIGITS, PIN_TIMEOUT, CallLog, CallServices
from sipbridge.calls.waiting import first
from sipbridge.ids import SIP_CALL_PREFIX, new_id
from sipbridge.media.ports import PortsExhausted
from sipbridge.media.prompts import ENTER_PIN, ENTERING_ROOM, WRONG_PIN, load_prompt
from sipbridge.media.tones import ringback_tone
from sipbridge.room import CallStatus, ParticipantSpec, RoomConnectError
from sipbridge.sip import CallFailed, MediaParams, MediaSession, NegotiationError
from sipbridge.stats import client_error, indeterminate, server_error, success

log = logging.getLogger("sipbridge.calls.inbound")
RINGING_TIMEOUT_STATUS = 480
ATTR_REPLACES = "sip.replaces"
"""Ours: set on a participant whose call was taken over by an INVITE with Replaces: the replaced leg's Call-ID."""


class InboundCallFlow(BridgedCall):
    direction = SIPCallDirection.SCD_INBOUND

    def __init__(self, services: CallServices, caller: CallerLeg) -> None:
        lk_call_id = new_id(SIP_CALL_PREFIX)
        stats = services.stats.call("in", uri_host(caller.request.to.uri))
        super().__init__(services, lk_call_id, CallLog(log, {"callID": lk_call_id, "sipCallID": caller.call_id}), stats)
        self.caller = caller
        """The caller's SIP leg (after an INVITE with Replaces took this call over, the new caller's)."""
        self._handed_over = False
        """This flow's leg now belongs to the call it replaced (RFC 3891)."""
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._collecting_pin = False
        self._answered = False
        self.trunk: SIPInboundTrunkInfo | None = None
        self.summary.from_number, self.summary.to_number = uri_user(caller.from_.uri), uri_user(caller.request.to.uri)

    @property
    def leg(self) -> PhoneLeg | None:
        return None if self._handed_over else self.caller

    # -- entry point -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        capacity = self.services.capacity
        self.stats.invite_received()
        refusal = capacity.refusal
        self._claim_trace(self.caller.call_id)
        if refusal:
            self.services.refused_invites.note_now(
                self.caller.source.host, f"503 ({refusal}), Call-ID {self.caller.call_id}"
            )
            self.caller.reject(503, reason=refusal)
            refused = server_error("shutdown") if capacity.draining else client_error("quota-exceeded")
            self.stats.refused(refused)
            self.stats.ended(refused)
            self.summary.ending = f"refused: {refusal}"
            self._end_trace()
            return
        capacity.begin(self.lk_call_id)
        ending = server_error("other")
        try:
            await self._run()
        except CallEnd as end:
            self.log.info("call ended: %s", end.reason)
            ending = end.termination
            self.summary.ending = end.reason
        except CallFailed as failure:
            self.log.info("call ended by the caller or the network: %s", failure)
            ending = success("hangup" if self._answered else "cancelled")
            self.summary.ending = f"ended by the caller or the network: {failure}"
        finally:
            await self._release()
            capacity.end(self.lk_call_id)
            self.stats.ended(ending)

    async def _run(self) -> None:
        registration = self.caller.registration
        registered = self.services.registration_trunk(registration) if registration else ""
        if registration:
            self.log.info("sent over registration %s: admitted by trunk %s", registration, registered or "-")
        facts = invite_facts(self.caller.request, self.caller.source.host, self.lk_call_id, registered)
        decision = await self.services.decider.decide(facts)
        self.stats.checked()
        self._describe(decision)
        if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN):
            self.log.info(
                "INVITE from %s to %s via %s: %s (%s)",
                facts.calling_number, facts.called_number, facts.source_ip, decision.verdict, decision.reason,
            )  # fmt: skip
        else:  # anyone can send these at any rate: a few lines per source, not one per INVITE
            self.services.refused_invites.note_now(
                facts.source_ip,
                f"{facts.calling_number} to {facts.called_number}: {decision.verdict} ({decision.reason}), "
                f"Call-ID {facts.sip_call_id}",
            )
        if decision.credentials is not None:
            self._mask_in_trace(decision.credentials.password)
        refusal = await admit(decision, self.caller, self.services, self.stats, self.log)
        if refusal:
            self.summary.ending = refusal
            return
        self.stats.accepted()
        self.stats.started(self.rtp_packets)
        if self.caller.replaces is not None:
            await self._take_over(decision)
            return
        await self._open_media(decision)
        if decision.verdict is Verdict.REQUEST_PIN:
            decision = await self._collect_pin(facts)
            dispatch = self._accepted(decision)
            await self._join_dispatched(dispatch, status="active")
            self._became_active()
        else:
            dispatch = self._accepted(decision)
            await self._ring_and_answer(dispatch)
        await self._in_call(dispatch.max_call_duration_seconds)

    def _describe(self, decision: Decision) -> None:
        """What the inspector shows of the decision: the trunk and rule that took the call."""
        if decision.trunk is not None:
            self.summary.trunk_id = decision.trunk.sip_trunk_id
        if decision.rule is not None:
            self.summary.rule_id = decision.rule.sip_dispatch_rule_id

    def _accepted(self, decision: Decision) -> CallDispatch:
        if decision.verdict is not Verdict.ACCEPT or decision.dispatch is None:
            raise CallEnd(f"not accepted: {decision.verdict} ({decision.reason})", client_error("no-dispatch"))
        dispatch = decision.dispatch
        self.trunk = decision.trunk
        self.media_config = dispatch.media
        self.log.info(
            "dispatching to room %r as %r (trunk %s, rule %s)",
            dispatch.room_name, dispatch.participant_identity, dispatch.trunk_id or "-", dispatch.rule_id,
        )  # fmt: skip
        if dispatch.krisp_enabled:
            self.log.info("feature KRISP_ENABLED: noise suppression on the caller's audio")
        return dispatch

    # -- INVITE with Replaces (RFC 3891) -------------------------------------------------------------------------

    async def _take_over(self, decision: Decision) -> None:
        """Answer an INVITE that replaces one of our calls and hand its leg to that call: the participant stays,
        its audio now comes from and goes to the new caller. Only a caller the replaced call's trunk admits may."""
        target = self._replaced_flow()
        if target is None:
            self.summary.ending = refuse(self.caller, 481, "the call to replace has no room participant here", False)
            self.stats.refused(client_error("no-call-to-replace"))
            return
        ours = decision.trunk.sip_trunk_id if decision.trunk is not None else None
        theirs = target.trunk.sip_trunk_id if target.trunk is not None else None
        if decision.verdict is not Verdict.ACCEPT or ours != theirs:
            self.log.info("Replaces refused: admitted by trunk %s, the call is trunk %s's", ours, theirs)
            wrong_trunk = "Replaces must come through the replaced call's trunk"
            self.summary.ending = refuse(self.caller, 403, wrong_trunk, False)
            self.stats.refused(client_error("forbidden"))
            return
        self.media_config = target.media_config
        offer_answer = await self._open_rtp_or_refuse()
        params = await self.caller.answer(offer_answer)
        rtp, self.rtp, self._handed_over = self.rtp, None, True  # they belong to the replaced call from here on
        assert rtp is not None and target.participant is not None and target.leg is not None
        replaced = target.leg.call_id
        attributes = {ATTR_CALL_ID_FULL: self.caller.call_id, ATTR_CALL_TAG: self.caller.from_.tag or "",
                      ATTR_REPLACES: replaced}  # fmt: skip
        if ATTR_PHONE_NUMBER in target.participant.spec.attributes:  # not when the rule hides the number
            attributes[ATTR_PHONE_NUMBER] = uri_user(self.caller.from_.uri)
        self.log.info("replacing call %s in room %r", replaced, target.room_name)
        await target.replace_leg(self.caller, rtp, offer_answer, params, attributes)
        raise CallEnd(f"took over call {replaced}: its flow carries this leg now", success("replaced"))

    def _replaced_flow(self) -> InboundCallFlow | None:
        for active in self.services.registry:
            if (
                isinstance(active, InboundCallFlow) and active.leg is not None
                and active.leg.handle == self.caller.replaces and active.participant is not None
            ):  # fmt: skip
                return active
        return None

    async def replace_leg(
        self, caller: CallerLeg, rtp: PhoneRtp, offer_answer: MediaSession, params: MediaParams,
        attributes: dict[str, str],
    ) -> None:  # fmt: skip
        """An answered INVITE with Replaces takes this call's place: its RTP session carries the call's audio from
        now on, the participant stays (its ``attributes`` updated), and the replaced leg gets BYE."""
        old_leg, old_rtp = self.leg, self.rtp
        self.caller, self.rtp, self.offer_answer = caller, rtp, offer_answer
        self._changed_leg(old_leg, old_rtp)
        self._start_media(params)
        if old_rtp is not None:
            await old_rtp.close()
        if self.participant is not None and attributes:
            await self.participant.update_attributes(attributes)

    # -- media -------------------------------------------------------------------------------------------------

    async def _open_rtp_or_refuse(self) -> MediaSession:
        try:
            return await self._open_rtp()
        except PortsExhausted:
            self.caller.reject(503, reason="no media port available")
            raise CallEnd("no RTP port", server_error("media-failed")) from None

    async def _open_media(self, decision: Decision) -> None:
        self.media_config = decision.media
        offer_answer = await self._open_rtp_or_refuse()
        room_rate = DEFAULT_ROOM_RATE
        offer = self.caller.offer
        if offer is not None:
            self.stats.sdp(self.caller.request.body, None, offered_codecs(offer))
            try:
                offer_answer.receive_offer(offer)
            except NegotiationError as e:
                self.caller.reject(488, reason=str(e))
                raise CallEnd(f"no acceptable media: {e}", client_error("no-common-codec")) from None
            if offer_answer.current is not None:
                room_rate = sample_rate(offer_answer.current)  # known before the room is joined: no resampling
        self._attach_audio(room_rate)

    async def _answer(self, headers: dict[str, str] | None = None) -> None:
        assert self.offer_answer is not None
        params = await self.caller.answer(self.offer_answer, headers=headers)
        self._answered = True
        self._start_media(params)

    # -- PIN ---------------------------------------------------------------------------------------------------

    async def _collect_pin(self, facts: InviteFacts) -> Decision:
        """Answer, prompt for the PIN, read digits up to '#', and decide again with it."""
        assert self.audio is not None
        if self.trace is not None:
            self.trace.pin_entry = True  # from the answer on, digits in SIP INFO are masked in the trace
        await self._answer()
        self._follow_sip_events(self.caller)
        rate = self.audio.codec_rate
        self.audio.play(load_prompt(ENTER_PIN, rate))
        self._collecting_pin = True
        pin = ""
        try:
            while (digit := await self._next_digit()) != "#":
                pin += digit
                if len(pin) > PIN_MAX_DIGITS:
                    break
        except TimeoutError:
            self.log.info("no PIN entered within %.0f s", PIN_TIMEOUT)
        self._collecting_pin = False
        decision = await self.services.decider.decide(facts, pin=pin, no_pin=not pin, answered=True)
        if self.trace is not None:
            self.trace.pin_entry = False
        self._describe(decision)
        self.audio.discard_caller_audio()
        if decision.verdict is not Verdict.ACCEPT:
            self.log.info("PIN refused: %s", decision.reason)
            await self.audio.play_and_wait(load_prompt(WRONG_PIN, rate))
            await self.caller.bye()
            raise CallEnd("wrong PIN", client_error("wrong-pin"))
        await self.audio.play_and_wait(load_prompt(ENTERING_ROOM, rate))
        return decision

    async def _next_digit(self) -> str:
        """The next digit the caller pressed; raises CallEnd when the call ends meanwhile."""
        digit = asyncio.ensure_future(self._digits.get())
        outcome = await first(
            {"digit": digit, "caller": self.caller.wait_ended(), "media": asyncio.shield(self._media_lost)},
            PIN_TIMEOUT,
        )
        if outcome == "digit":
            return digit.result()
        if outcome == "timeout":
            raise TimeoutError
        if outcome == "caller":
            raise CallEnd("caller hung up while entering the PIN", success("hangup"))
        raise CallEnd("media lost", indeterminate("media-timeout"))

    # -- room --------------------------------------------------------------------------------------------------

    async def _join_dispatched(self, dispatch: CallDispatch, status: CallStatus) -> None:
        attributes = dict(dispatch.participant_attributes)
        # As livekit/sip adds them on joining, whoever decided the dispatch (livekit-server in cluster mode).
        attributes[ATTR_CALL_ID_FULL] = self.caller.call_id
        if self.caller.from_.tag:
            attributes[ATTR_CALL_TAG] = self.caller.from_.tag
        attributes[ATTR_CALL_STATUS] = status
        spec = ParticipantSpec(
            dispatch.room_name,
            dispatch.participant_identity,
            name=dispatch.participant_name,
            metadata=dispatch.participant_metadata,
            attributes=attributes,
            room_config=dispatch.room_config,
        )
        try:
            await self._join_room(spec, krisp_enabled=dispatch.krisp_enabled)
        except RoomConnectError as e:
            self.log.error("cannot join room %r: %s", dispatch.room_name, e)
            if not self._answered:
                self.caller.reject(503, reason="room unavailable", headers={"Reason": reason_header(503, str(e))})
            raise CallEnd("room join failed", server_error("participant-failed")) from None

    async def _ring_and_answer(self, dispatch: CallDispatch) -> None:
        """Ring while the participant waits in the room; answer when someone's audio arrives."""
        assert self.audio is not None and self.offer_answer is not None
        early_media = self.services.config.inbound_early_media and self.caller.offer is not None
        if early_media:
            self.caller.progress(self.offer_answer)
            if self.offer_answer.current is not None:
                self._start_media(self.offer_answer.current)
                self.audio.play(ringback_tone(self.audio.codec_rate), loop=True)
        else:
            self.caller.ring()
        await self._join_dispatched(dispatch, status="ringing")
        assert self.participant is not None
        timeout = dispatch.ringing_timeout_seconds or DEFAULT_RINGING_TIMEOUT
        outcome = await first(
            {
                "answered": self.participant.wait_remote_audio(),
                "caller": self.caller.wait_ended(),
                "room": self.participant.wait_ended(),
                "rpc": asyncio.shield(self._hangup_asked),
                "never": self._keep_ringing(early_media),
            },
            timeout,
        )
        if outcome == "rpc":
            self.caller.reject(RINGING_TIMEOUT_STATUS, headers=dict(self._hangup_asked.result()))
            raise CallEnd("hung up by the room while ringing (lk.sip.EndCall)", success("rpc"))
        if outcome == "caller":
            raise CallEnd("caller hung up while ringing", success("cancelled"))
        if outcome != "answered":
            status = self._ringing_timeout_status() if outcome == "timeout" else RINGING_TIMEOUT_STATUS
            self.caller.reject(status, headers={"Reason": reason_header(status, f"ringing {outcome}")})
            if outcome == "room":
                raise CallEnd("not answered (room)", room_ending(self.participant.end_reason))
            raise CallEnd(f"not answered ({outcome})", client_error("no-answer"))
        self.audio.stop_playing()
        await self._answer(headers=dispatch.answer_headers(dict(dispatch.participant_attributes)))
        self._follow_sip_events(self.caller)
        await self._set_status("active")
        self.log.info("answered")

    async def _keep_ringing(self, early_media: bool) -> None:
        """Repeat the 180 every ``sip_ringing_interval`` while the call rings (as the Go service does: proxies
        and NATs on the way see the call alive); with early media the 183 already carries the ringback."""
        interval = self.services.config.sip_ringing_interval
        while True:
            await asyncio.sleep(interval)
            if not early_media:
                self.caller.ring()

    def _ringing_timeout_status(self) -> int:
        """The trunk's ``ringing_timeout_status`` when set (its values are SIP status codes), else 480."""
        status = int(self.trunk.ringing_timeout_status) if self.trunk is not None else 0
        return status if status else RINGING_TIMEOUT_STATUS

    def _remote_headers(self) -> Iterable[tuple[str, str]]:
        return self.caller.request.headers

    # -- DTMF --------------------------------------------------------------------------------------------------

    def _digit_from_phone(self, digit: str) -> None:
        if self._collecting_pin:
            self._digits.put_nowait(digit)
        else:
            super()._digit_from_phone(digit)


IncomingHandler = Callable[[CallerLeg], Awaitable[None]]


def inbound_handler(services: CallServices) -> IncomingHandler:
    """The SIP endpoint's incoming-call handler: one flow per INVITE."""

    async def handle(caller: CallerLeg) -> None:
        await InboundCallFlow(services, caller).run()

    return handle
