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

from dispatch.call import InboundCall as DispatchCall
from dispatch.decide import Decision, Verdict
from dispatch.evaluate import ATTR_CALL_ID_FULL, ATTR_CALL_STATUS, ATTR_PHONE_NUMBER, CallDispatch
from sipbridge.calls.bridged import (
    DEFAULT_ROOM_RATE,
    BridgedCall,
    CallEnd,
    first,
    reason_header,
    room_ending,
    sample_rate,
)
from sipbridge.calls.media_link import offered_codecs
from sipbridge.calls.nonces import NonceLedgerError
from sipbridge.calls.services import (
    DEFAULT_RINGING_TIMEOUT,
    PIN_MAX_DIGITS,
    PIN_TIMEOUT,
    CallLog,
    CallServices,
)
from sipbridge.ids import SIP_CALL_PREFIX, new_id
from sipbridge.media.ports import PortsExhausted
from sipbridge.media.prompts import ENTER_PIN, ENTERING_ROOM, WRONG_PIN, load_prompt
from sipbridge.media.tones import ringback_tone
from sipbridge.room import CallStatus, ParticipantSpec, RoomConnectError
from sipbridge.sip import CallFailed, InboundCall, NegotiationError, SipParseError
from sipbridge.sip.auth import Verdict as AuthVerdict
from sipbridge.sip.auth import parse_digest
from sipbridge.sip.message import Request
from sipbridge.sip.uri import SipUri, TelUri, Uri
from sipbridge.stats import client_error, indeterminate, server_error, success

log = logging.getLogger("sipbridge.calls.inbound")
RINGING_TIMEOUT_STATUS = 480
_REFUSALS = {
    Verdict.NO_TRUNK: client_error("no-trunk"),
    Verdict.NO_RULE: client_error("no-rule"),
    Verdict.AUTH_FAILED: client_error("unauthorized"),
    Verdict.WRONG_PIN: client_error("wrong-pin"),
}
"""How the metrics name a refused INVITE, by the decision's verdict (a conflict is a dispatch error)."""
ATTR_REPLACES = "sip.replaces"
"""Ours: set on a participant whose call was taken over by an INVITE with Replaces: the replaced leg's Call-ID."""


def _uri_user(uri: Uri) -> str:
    if isinstance(uri, SipUri):
        return uri.user_decoded or ""
    if isinstance(uri, TelUri):
        return uri.number
    return ""


def _uri_host(uri: Uri) -> str:
    return uri.host if isinstance(uri, SipUri) else ""


def dispatch_call_for(
    invite: Request, source_host: str, lk_call_id: str, registered_trunk_id: str = ""
) -> DispatchCall:
    """What `dispatch` needs to know of an INVITE to decide it (pure, so the robustness fuzzer drives it).
    ``registered_trunk_id``: the trunk named by the registration of ours the INVITE came over."""
    to_uri = invite.to.uri
    return DispatchCall(
        called_number=_uri_user(to_uri) or _uri_user(invite.uri),
        calling_number=_uri_user(invite.from_.uri),
        source_ip=source_host,
        from_host=_uri_host(invite.from_.uri),
        called_host=_uri_host(to_uri),
        auth_username=_auth_username(invite),
        lk_call_id=lk_call_id,
        sip_call_id=invite.call_id,
        headers=list(invite.headers),
        registered_trunk_id=registered_trunk_id,
    )


def _auth_username(invite: Request) -> str | None:
    header = invite.headers.get("Authorization") or invite.headers.get("Proxy-Authorization")
    if not header:
        return None
    try:
        return parse_digest(header).get("username")
    except SipParseError:
        return None  # not Digest (e.g. Basic): the trunk's check refuses it with 403


class InboundCallFlow(BridgedCall):
    direction = SIPCallDirection.SCD_INBOUND

    def __init__(self, services: CallServices, call: InboundCall) -> None:
        lk_call_id = new_id(SIP_CALL_PREFIX)
        stats = services.stats.call("in", _uri_host(call.request.to.uri))
        super().__init__(services, lk_call_id, CallLog(log, {"callID": lk_call_id, "sipCallID": call.call_id}), stats)
        self.call = call
        self.sip = call
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._collecting_pin = False
        self._answered = False
        self.trunk: SIPInboundTrunkInfo | None = None
        self.summary.from_number, self.summary.to_number = _uri_user(call.from_.uri), _uri_user(call.to.uri)

    # -- entry point -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        services = self.services
        self.stats.invite_received()
        refusal = services.refusal
        self._claim_trace(self.call.call_id)
        if refusal:
            services.refused_invites.note_now(self.call.source.host, f"503 ({refusal}), Call-ID {self.call.call_id}")
            await self.call.reject(503, reason=refusal)
            refused = server_error("shutdown") if services.draining else client_error("quota-exceeded")
            self.stats.refused(refused)
            self.stats.ended(refused)
            self.summary.ending = f"refused: {refusal}"
            self._end_trace()
            return
        services.active.add(self.call.call_id)
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
            services.active.discard(self.call.call_id)
            self.stats.ended(ending)

    async def _run(self) -> None:
        registered = self.services.registration_trunk(self.call.registration) if self.call.registration else ""
        if self.call.registration:
            self.log.info("sent over registration %s: admitted by trunk %s", self.call.registration, registered or "-")
        info = dispatch_call_for(self.call.request, self.call.source.host, self.lk_call_id, registered)
        decision = await self.services.decider.decide(info)
        self.stats.checked()
        self._describe(decision)
        if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN):
            self.log.info(
                "INVITE from %s to %s via %s: %s (%s)",
                info.calling_number, info.called_number, info.source_ip, decision.verdict, decision.reason,
            )  # fmt: skip
        else:  # anyone can send these at any rate: a few lines per source, not one per INVITE
            self.services.refused_invites.note_now(
                info.source_ip,
                f"{info.calling_number} to {info.called_number}: {decision.verdict} ({decision.reason}), "
                f"Call-ID {info.sip_call_id}",
            )
        if not await self._admit(decision):
            self.summary.ending = self.summary.ending or f"{decision.verdict}: {decision.reason}"
            return
        if self.call.replaces is not None:
            await self._take_over(decision)
            return
        await self._open_media(decision)
        if decision.verdict is Verdict.REQUEST_PIN:
            decision = await self._collect_pin(info)
            dispatch = self._accepted(decision)
            await self._join_dispatched(dispatch, status="active")
            self._became_active()
        else:
            dispatch = self._accepted(decision)
            await self._ring_and_answer(dispatch)
        await self._in_call(dispatch.max_call_duration_seconds)

    # -- admission ---------------------------------------------------------------------------------------------

    async def _admit(self, decision: Decision) -> bool:
        """Challenge, reject or let the call in; True when it may proceed."""
        hide = self.services.config.hide_inbound_port
        # The trunk's auth_realm (livekit-server's realm in cluster mode); empty: the stack's own.
        realm = (decision.credentials.realm if decision.credentials is not None else "") or None
        if decision.verdict is Verdict.AUTH_REQUIRED:
            await self.call.challenge(realm=realm)
            self.stats.refused(client_error("unauthorized"))
            return False
        if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN) and decision.credentials is not None:
            creds = decision.credentials
            self._mask_in_trace(creds.password)
            source, now = self.call.source.host, asyncio.get_running_loop().time()
            if self.services.digest_failures.exhausted(source, now):
                self.log.info("too many failed digest answers from %s: refused without checking", source)
                await self._refuse(403, "too many failed authentication attempts", hide)
                self.stats.refused(client_error("flood"))
                return False
            try:
                verdict = await self._authenticate(creds.username, creds.password, realm)
            except NonceLedgerError as e:
                self.log.warning("cannot check the digest answer for replays: %s", e)
                await self.call.reject(503, reason="authentication unavailable")
                self.stats.refused(server_error("auth-error"))
                self.summary.ending = "authentication unavailable"
                return False
            if verdict is AuthVerdict.MISSING or verdict is AuthVerdict.STALE:
                await self.call.challenge(stale=verdict is AuthVerdict.STALE, realm=realm)
                self.stats.refused(client_error("unauthorized"))
                self.summary.ending = f"digest answer {verdict.value}: challenged again"
                return False
            if verdict is not AuthVerdict.OK:
                self.log.info("digest authentication failed for user %r", creds.username)
                self.services.digest_failures.spend(source, now)
                await self._refuse(403, "authentication failed", hide)
                self.stats.refused(client_error("unauthorized"))
                return False
        if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN):
            if hide:
                await self.call.trying()  # the stack held back 100 Trying until the caller was known
            self.stats.accepted()
            self.stats.started(self.rtp_packets)
            return True
        quiet = hide and decision.verdict in (Verdict.AUTH_FAILED, Verdict.NO_TRUNK, Verdict.NO_RULE)
        await self._refuse(decision.sip_status, decision.reason, quiet)
        self.stats.refused(_REFUSALS.get(decision.verdict, server_error("dispatch-error")))
        return False

    async def _authenticate(self, username: str, password: str, realm: str | None) -> AuthVerdict:
        """The digest verdict, with replays refused: an answer is good only if its nonce use is fresh. A replay
        is answered like an old nonce (a new challenge), which a caller who knows the password simply answers."""
        check = self.call.authenticate(username, password, realm)
        if check.verdict is not AuthVerdict.OK or check.use is None:
            return check.verdict
        if not await self.services.nonces.claim(check.use):
            self.log.info("digest answer for user %r reuses its nonce: challenged again", username)
            return AuthVerdict.STALE
        return AuthVerdict.OK

    async def _refuse(self, status: int, reason: str, quiet: bool) -> None:
        self.summary.ending = f"refused: {reason}" + (" (dropped without an answer)" if quiet else "")
        if quiet:
            await self.call.drop()
        else:
            await self.call.reject(status, reason=reason, headers={"Reason": reason_header(status, reason)})

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
            await self._refuse(481, "the call to replace has no room participant here", False)
            self.stats.refused(client_error("no-call-to-replace"))
            return
        ours = decision.trunk.sip_trunk_id if decision.trunk is not None else None
        theirs = target.trunk.sip_trunk_id if target.trunk is not None else None
        if decision.verdict is not Verdict.ACCEPT or ours != theirs:
            self.log.info("Replaces refused: admitted by trunk %s, the call is trunk %s's", ours, theirs)
            await self._refuse(403, "Replaces must come through the replaced call's trunk", False)
            self.stats.refused(client_error("forbidden"))
            return
        self.media_config = target.media_config
        try:
            media = await self._open_rtp()
        except PortsExhausted:
            await self.call.reject(503, reason="no media port available")
            raise CallEnd("no RTP port", server_error("media-failed")) from None
        params = await self.call.answer(media)
        rtp, self.rtp, self.sip = self.rtp, None, None  # they belong to the replaced call from here on
        assert rtp is not None and target.participant is not None and target.sip is not None
        replaced = target.sip.call_id
        attributes = {ATTR_CALL_ID_FULL: self.call.call_id, ATTR_REPLACES: replaced}
        if ATTR_PHONE_NUMBER in target.participant.spec.attributes:  # not when the rule hides the number
            attributes[ATTR_PHONE_NUMBER] = _uri_user(self.call.from_.uri)
        self.log.info("replacing call %s in room %r", replaced, target.room_name)
        await target.replace_leg(self.call, rtp, media, params, attributes)
        raise CallEnd(f"took over call {replaced}: its flow carries this leg now", success("replaced"))

    def _replaced_flow(self) -> InboundCallFlow | None:
        for active in self.services.registry:
            if (
                isinstance(active, InboundCallFlow) and active.sip is not None
                and active.sip.handle == self.call.replaces and active.participant is not None
            ):  # fmt: skip
                return active
        return None

    # -- media -------------------------------------------------------------------------------------------------

    async def _open_media(self, decision: Decision) -> None:
        self.media_config = decision.media
        try:
            media = await self._open_rtp()
        except PortsExhausted:
            await self.call.reject(503, reason="no media port available")
            raise CallEnd("no RTP port", server_error("media-failed")) from None
        room_rate = DEFAULT_ROOM_RATE
        if self.call.offer is not None:
            self.stats.sdp(self.call.request.body, None, offered_codecs(self.call.offer))
            try:
                media.receive_offer(self.call.offer)
            except NegotiationError as e:
                await self.call.reject(488, reason=str(e))
                raise CallEnd(f"no acceptable media: {e}", client_error("no-common-codec")) from None
            if media.current is not None:
                room_rate = sample_rate(media.current)  # known before the room is joined: no resampling
        self._attach_audio(room_rate)

    async def _answer(self, headers: dict[str, str] | None = None) -> None:
        assert self.media is not None
        params = await self.call.answer(self.media, headers=headers)
        self._answered = True
        self._start_media(params)

    # -- PIN ---------------------------------------------------------------------------------------------------

    async def _collect_pin(self, info: DispatchCall) -> Decision:
        """Answer, prompt for the PIN, read digits up to '#', and decide again with it."""
        assert self.audio is not None
        if self.trace is not None:
            self.trace.pin_entry = True  # from the answer on, digits in SIP INFO are masked in the trace
        await self._answer()
        self._start_tasks_for_sip_events()
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
        decision = await self.services.decider.decide(info, pin=pin, no_pin=not pin, answered=True)
        if self.trace is not None:
            self.trace.pin_entry = False
        self._describe(decision)
        self.audio.discard_caller_audio()
        if decision.verdict is not Verdict.ACCEPT:
            self.log.info("PIN refused: %s", decision.reason)
            await self.audio.play_and_wait(load_prompt(WRONG_PIN, rate))
            await self.call.bye()
            raise CallEnd("wrong PIN", client_error("wrong-pin"))
        await self.audio.play_and_wait(load_prompt(ENTERING_ROOM, rate))
        return decision

    async def _next_digit(self) -> str:
        """The next digit the caller pressed; raises CallEnd when the call ends meanwhile."""
        digit = asyncio.ensure_future(self._digits.get())
        outcome = await first(
            {"digit": digit, "caller": self.call.wait_ended(), "media": asyncio.shield(self._media_lost)}, PIN_TIMEOUT
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
                await self.call.reject(503, reason="room unavailable", headers={"Reason": reason_header(503, str(e))})
            raise CallEnd("room join failed", server_error("participant-failed")) from None

    async def _ring_and_answer(self, dispatch: CallDispatch) -> None:
        """Ring while the participant waits in the room; answer when someone's audio arrives."""
        assert self.audio is not None and self.media is not None
        early_media = self.services.config.inbound_early_media and self.call.offer is not None
        if early_media:
            await self.call.progress(self.media)
            if self.media.current is not None:
                self._start_media(self.media.current)
                self.audio.play(ringback_tone(self.audio.codec_rate), loop=True)
        else:
            await self.call.ring()
        await self._join_dispatched(dispatch, status="ringing")
        assert self.participant is not None
        timeout = dispatch.ringing_timeout_seconds or DEFAULT_RINGING_TIMEOUT
        outcome = await first(
            {
                "answered": self.participant.wait_remote_audio(),
                "caller": self.call.wait_ended(),
                "room": self.participant.wait_ended(),
                "rpc": asyncio.shield(self._hangup_asked),
                "never": self._keep_ringing(early_media),
            },
            timeout,
        )
        if outcome == "rpc":
            await self.call.reject(RINGING_TIMEOUT_STATUS, headers=dict(self._hangup_asked.result()))
            raise CallEnd("hung up by the room while ringing (lk.sip.EndCall)", success("rpc"))
        if outcome == "caller":
            raise CallEnd("caller hung up while ringing", success("cancelled"))
        if outcome != "answered":
            status = self._ringing_timeout_status() if outcome == "timeout" else RINGING_TIMEOUT_STATUS
            await self.call.reject(status, headers={"Reason": reason_header(status, f"ringing {outcome}")})
            if outcome == "room":
                raise CallEnd("not answered (room)", room_ending(self.participant.end_reason))
            raise CallEnd(f"not answered ({outcome})", client_error("no-answer"))
        self.audio.stop_playing()
        await self._answer(headers=dispatch.answer_headers(dict(dispatch.participant_attributes)))
        self._start_tasks_for_sip_events()
        await self._set_status("active")
        self.log.info("answered")

    async def _keep_ringing(self, early_media: bool) -> None:
        """Repeat the 180 every ``sip_ringing_interval`` while the call rings (as the Go service does: proxies
        and NATs on the way see the call alive); with early media the 183 already carries the ringback."""
        interval = self.services.config.sip_ringing_interval
        while True:
            await asyncio.sleep(interval)
            if not early_media:
                await self.call.ring()

    def _ringing_timeout_status(self) -> int:
        """The trunk's ``ringing_timeout_status`` when set (its values are SIP status codes), else 480."""
        status = int(self.trunk.ringing_timeout_status) if self.trunk is not None else 0
        return status if status else RINGING_TIMEOUT_STATUS

    def _remote_headers(self) -> Iterable[tuple[str, str]]:
        return self.call.request.headers

    # -- DTMF --------------------------------------------------------------------------------------------------

    def _digit_from_phone(self, digit: str) -> None:
        if self._collecting_pin:
            self._digits.put_nowait(digit)
        else:
            super()._digit_from_phone(digit)


IncomingHandler = Callable[[InboundCall], Awaitable[None]]


def inbound_handler(services: CallServices) -> IncomingHandler:
    """The SIP endpoint's incoming-call handler: one flow per INVITE."""

    async def handle(call: InboundCall) -> None:
        await InboundCallFlow(services, call).run()

    return handle
