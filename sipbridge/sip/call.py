"""One INVITE dialog usage as a sans-IO state machine: what inbound and outbound calls share.

The user agent routes requests, ACKs, responses, timeouts and its owner's actions to a call; the call only queues
outputs (``call_outputs``), which the agent carries out as soon as the call returns. This module holds the
dialog: the peer's in-dialog requests (re-INVITE/UPDATE with glare, INFO DTMF, NOTIFY for our REFER, BYE), ours
(BYE, REFER, INFO, re-INVITE, session refreshes) with their digest and 422 retries, and the RFC 4028 timer's
deadlines. ``answering`` and ``dialling`` add each side's INVITE transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from .auth import DigestCredentials
from .call_outputs import (
    CallEnvironment,
    Emit,
    Output,
    SendDatagram,
    SendRequest,
    SendResponse,
    SetTimer,
    StopRetransmitting,
)
from .call_state import PRE_ANSWER, CallInfo, CallState
from .capabilities import add_capabilities, method_refused, options_response
from .dialog import Dialog
from .errors import LocalProtocolError, SipParseError
from .events import CallEnded, CallHandle, DtmfReceived, Event, MediaUpdated, TransferProgress
from .headers import parse_header_params
from .info import DTMF, DTMF_RELAY, SIPFRAG, dtmf_relay_body, parse_dtmf_info, parse_sipfrag_status
from .message import Request, Response, response_to
from .offer_answer import MediaParams, MediaSession
from .retries import digest_retry, interval_retry, retried
from .sdp import SessionDescription, parse_sdp
from .session_timer import SessionTimer
from .transaction import Address, ClientTransaction, ServerTransaction, address_for
from .uri import NameAddr, Uri

SDP = "application/sdp"


class Call(ABC):
    def __init__(
        self,
        env: CallEnvironment,
        handle: CallHandle,
        *,
        inbound: bool,
        invite: Request,
        peer: Address,
        local_tag: str,
        dialog: Dialog | None,
    ) -> None:
        self.env = env
        self.handle = handle
        self.inbound = inbound
        self.invite = invite
        self.call_id = invite.call_id  # constant for the call, also across authorised retries
        self.peer = peer  # where the INVITE came from (inbound) or went to (outbound)
        self.local_tag = local_tag
        self.dialog = dialog
        self.state = CallState.INCOMING if inbound else CallState.CALLING
        self.media: MediaSession | None = None
        self.credentials: DigestCredentials | None = None  # answers the peer's digest challenges to our requests
        self.offer: SessionDescription | None = None  # the remote offer of an inbound INVITE, if any
        self.final_response: Response | None = None  # outbound: the final response to our INVITE
        self.deadlines: dict[str, float] = {}
        self._outputs: list[Output] = []
        self._reinvite_tx: ServerTransaction | None = None  # the peer's re-INVITE we answered 2xx, until its ACK
        self._reinvite_awaits_answer = False  # that 2xx carried our offer: the answer comes in the ACK
        self._our_reinvite: Request | None = None  # our re-INVITE, until its final response
        self._remote_allow = frozenset[str]()
        self._timer: SessionTimer | None = None
        self.registration: str | None = None  # inbound: the registration of ours the INVITE came over, if any
        self.replaces: CallHandle | None = None  # inbound: the call an INVITE with Replaces takes over (RFC 3891)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    def info(self) -> CallInfo:
        return CallInfo(
            handle=self.handle,
            call_id=self.call_id,
            inbound=self.inbound,
            state=self.state,
            invite=self.invite,
            peer=self.peer,
            local_tag=self.local_tag,
            remote_tag=self.dialog.remote_tag if self.dialog is not None else None,
            offer=self.offer,
            media=self.media.current if self.media is not None else None,
            final_response=self.final_response,
            session_interval=self._timer.interval if self._timer is not None else None,
            registration=self.registration,
            replaces=self.replaces,
        )

    # ---- outputs --------------------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._outputs.append(Emit(event))

    def _reply(self, tx: ServerTransaction, response: Response) -> None:
        self._outputs.append(SendResponse(tx, response))

    def _send(self, request: Request) -> None:
        """An in-dialog request of ours, towards the dialog's next hop."""
        peer = self._next_hop()
        request.headers.add("Contact", self.env.contact(peer))
        request.headers.prepend("Via", self.env.via(peer))
        self._outputs.append(SendRequest(request, peer))

    def _send_ack(self, ack: Request, peer: Address) -> bytes:
        """An ACK for a 2xx goes outside any transaction; its bytes are kept for 2xx retransmissions."""
        ack.headers.prepend("Via", self.env.via(peer))
        data = ack.to_bytes()
        self._outputs.append(SendDatagram(data, peer))
        return data

    def _end(self, reason: str, *, status: int | None = None, by_remote: bool = False) -> None:
        if self.ended:
            return
        self.state = CallState.ENDED
        self.deadlines.clear()
        self._emit(CallEnded(self.handle, reason, status, by_remote, self.final_response, self.peer))

    def _require(self, action: str, *states: CallState, why: str = "") -> None:
        if self.state not in states:
            raise LocalProtocolError(action, self.state, why)

    # ---- actions of either side -----------------------------------------------------------------------------

    def hangup(self, now: float, headers: Mapping[str, str] | None = None) -> None:
        """BYE (with ``headers`` added) once answered; before, each side's way to give up (CANCEL, 480). Again,
        or once ended: nothing."""
        if self.state in (CallState.ENDED, CallState.CLOSING):
            return
        if self.state in PRE_ANSWER:
            self._hang_up_unanswered(now)
            return
        bye = self._in_dialog_request("BYE")
        for name, value in (headers or {}).items():
            bye.headers.add(name, value)
        self._send(bye)
        self.state = CallState.CLOSING

    @abstractmethod
    def _hang_up_unanswered(self, now: float) -> None: ...

    def refer(
        self, target: Uri | str, now: float, *, referred_by: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Blind transfer: REFER, then TransferProgress events from the 202 and the NOTIFYs."""
        self._require("refer", CallState.ANSWERED, CallState.CONFIRMED)
        request = self._in_dialog_request("REFER")
        request.headers.add("Refer-To", f"<{target}>")
        assert self.dialog is not None
        request.headers.add("Referred-By", referred_by or str(NameAddr(self.dialog.local_uri.uri)))
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        self._send(request)

    def reinvite(self, now: float, *, direction: str = "sendrecv") -> None:
        """Re-offer our media: ``sendonly`` holds the peer, ``sendrecv`` resumes. The answer arrives as
        MediaUpdated; a refused re-INVITE leaves the session as it was (RFC 3261 §14.1)."""
        self._require("reinvite", CallState.CONFIRMED)
        if self._reinvite_tx is not None:
            raise LocalProtocolError("reinvite", self.state, "the peer's re-INVITE is not acknowledged yet")
        if self._our_reinvite is not None:
            raise LocalProtocolError("reinvite", self.state, "a re-INVITE of ours is still pending")
        assert self.media is not None  # a confirmed call has negotiated
        request = self._in_dialog_request("INVITE")
        if self._timer is not None:
            request.headers.add("Session-Expires", self._timer.session_expires(answering=False))
            request.headers.add("Supported", "timer")
        request.headers.add("Content-Type", SDP)
        request.body = self.media.create_offer(direction).to_bytes()
        self._send(request)
        self._our_reinvite = request

    def send_info(self, digit: str, now: float, *, duration_ms: int = 250) -> None:
        """A DTMF digit as SIP INFO (application/dtmf-relay)."""
        self._require("send_info", CallState.ANSWERED, CallState.CONFIRMED)
        request = self._in_dialog_request("INFO")
        request.headers.add("Content-Type", DTMF_RELAY)
        request.body = dtmf_relay_body(digit, duration_ms)
        self._send(request)

    def _in_dialog_request(self, method: str) -> Request:
        assert self.dialog is not None  # every state that allows an in-dialog request has a dialog
        return self.dialog.create_request(method)

    def _next_hop(self) -> Address:
        """In-dialog requests of an inbound call over TCP/TLS reuse the INVITE's connection while it is open;
        after that they go where the route set or Contact says."""
        if self.inbound and self.peer.reliable and self.env.is_connected(self.peer):
            return self.peer
        assert self.dialog is not None
        return address_for(self.dialog.next_hop(), self.peer.transport)

    # ---- the peer's in-dialog requests ----------------------------------------------------------------------

    def on_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        if self._in_order(tx, request):
            self._serve(tx, request, now)

    def _in_order(self, tx: ServerTransaction, request: Request) -> bool:
        """False (after a 500) for an out-of-order CSeq (RFC 3261 §12.2.2)."""
        assert self.dialog is not None
        if self.dialog.accepts_remote_cseq(request.cseq.seq):
            return True
        self._reply(tx, response_to(request, 500, "CSeq out of order"))
        return False

    def _serve(self, tx: ServerTransaction, request: Request, now: float) -> None:
        method = request.method
        if method == "BYE":
            self._reply(tx, response_to(request, 200))
            self._end("bye", by_remote=True)
        elif method in ("INVITE", "UPDATE"):
            self._on_offer_request(tx, request, now)
        elif method == "INFO":
            self._on_info(tx, request)
        elif method == "NOTIFY":
            self._on_notify(tx, request)
        elif method == "OPTIONS":
            self._reply(tx, options_response(request, self.env.settings.user_agent))
        else:
            self._reply(tx, method_refused(request))

    def _on_offer_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        """re-INVITE or UPDATE: hold/unhold, address change, session refresh — answered from the offer itself."""
        if self.media is None or self.state not in (CallState.CONFIRMED, CallState.ANSWERED):
            self._reply(tx, response_to(request, 491 if request.method == "INVITE" else 500))
            return
        if request.method == "INVITE" and (self._reinvite_tx is not None or self._our_reinvite is not None):
            self._reply(tx, response_to(request, 491))  # glare (RFC 3261 §14.2)
            return
        assert self.dialog is not None
        self.dialog.update_target(request)
        body = b""
        params: MediaParams | None = None
        if (offer := request.sdp) is not None:
            try:
                before = self.media.current
                body = self.media.receive_offer(parse_sdp(offer)).to_bytes()
                params = self.media.current if self.media.current != before else None
            except SipParseError as exc:
                self._reply(tx, response_to(request, exc.status if exc.status == 488 else 400))
                return
        elif request.method == "INVITE":
            # An offerless re-INVITE (often a resume from hold) gets our full offer; the answer is in the ACK.
            body = self.media.create_offer().to_bytes()
            self._reinvite_awaits_answer = True
        response = response_to(request, 200)
        response.headers.add("Contact", self.env.contact(self.peer))
        add_capabilities(response, self.env.settings.user_agent)
        if self._timer is not None:
            response.headers.add("Session-Expires", self._timer.session_expires(answering=True))
            if "timer" in request.headers.tokens("Supported"):
                response.headers.add("Require", "timer")
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        self._reply(tx, response)
        if request.method == "INVITE":
            self._reinvite_tx = tx
        self._arm_session_timer(now)
        if params is not None:
            self._emit(MediaUpdated(self.handle, params))

    def _on_info(self, tx: ServerTransaction, request: Request) -> None:
        content_type = request.content_type
        if request.body and content_type not in (DTMF, DTMF_RELAY):
            self._reply(tx, response_to(request, 415))
            return
        self._reply(tx, response_to(request, 200))
        dtmf = parse_dtmf_info(content_type, request.body)
        if dtmf is not None:
            self._emit(DtmfReceived(self.handle, dtmf[0], dtmf[1]))

    def _on_notify(self, tx: ServerTransaction, request: Request) -> None:
        event, _ = parse_header_params(request.headers.get("Event") or "")
        if event.lower() != "refer":
            self._reply(tx, response_to(request, 489, "Bad Event"))
            return
        self._reply(tx, response_to(request, 200))
        status = parse_sipfrag_status(request.body) if request.content_type == SIPFRAG else None
        state, _ = parse_header_params(request.headers.get("Subscription-State") or "")
        if status is not None:
            final = status >= 200 or state.lower() == "terminated"
            self._emit(TransferProgress(self.handle, status, final))

    def on_ack(self, ack: Request, now: float) -> None:
        """An ACK outside any transaction: here, for our 2xx to the peer's re-INVITE."""
        tx = self._reinvite_tx
        if tx is None or not self._acknowledges(tx):
            return
        self._reinvite_tx = None
        params = self._answer_in(ack)
        if self._reinvite_awaits_answer and params is not None:
            self._emit(MediaUpdated(self.handle, params))
        self._reinvite_awaits_answer = False

    def _acknowledges(self, tx: ServerTransaction) -> bool:
        """Whether an ACK settles our 2xx on ``tx``: it stops the 2xx's retransmission, and matters to the call
        unless our BYE is already out."""
        if tx.state != "accepted":
            return False
        self._outputs.append(StopRetransmitting(tx))
        return self.state is not CallState.CLOSING

    def _answer_in(self, ack: Request) -> MediaParams | None:
        """The media an ACK settles: its SDP answer when it has one, else what was negotiated before."""
        params = self.media.current if self.media else None
        if self.media is not None and (answer := ack.sdp) is not None:
            try:
                params = self.media.receive_answer(parse_sdp(answer))
            except SipParseError:
                params = None
        return params

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if tx is self._reinvite_tx:
            self._reinvite_tx = None

    # ---- responses to our requests --------------------------------------------------------------------------

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        retry = None
        if response.status in (401, 407) and self.credentials is not None:
            retry = digest_retry(tx.request, response, self.credentials)
        elif response.status == 422 and tx.request.method == "INVITE":
            retry = interval_retry(tx.request, response)
        if retry is not None:
            self._resend(tx, retry)
        else:
            self._on_response(tx, response, now)

    def _on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        method, status = tx.request.method, response.status
        if method == "INVITE":
            self._on_reinvite_response(tx, response, now)
        elif method == "BYE" and status >= 200:
            self._end("bye", status=status)
        elif method == "REFER" and status >= 200:
            self._emit(TransferProgress(self.handle, status, final=status >= 300))
        elif method == "UPDATE" and status in (408, 481):
            self.hangup(now)

    def on_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        """No final response (408), or the transport failed (503)."""
        method = tx.request.method
        if method == "BYE":
            self._end("bye", status=status)
        elif method == "REFER":
            self._emit(TransferProgress(self.handle, status, final=True))
        elif method in ("INVITE", "UPDATE"):
            if tx.request is self._our_reinvite:
                self._our_reinvite = None
            self.hangup(now)  # a failed session refresh ends the call (RFC 4028 §10)

    def _on_reinvite_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status < 200:
            return
        if tx.request is self._our_reinvite:
            self._our_reinvite = None
        if response.status >= 300:
            if response.status in (408, 481):
                self.hangup(now)
            return
        assert self.dialog is not None
        self._send_ack(self.dialog.create_request("ACK", seq=tx.request.cseq.seq), self._next_hop())
        if self.media is not None and (answer := response.sdp) is not None:
            before = self.media.current
            try:
                params = self.media.receive_answer(parse_sdp(answer))
            except SipParseError:
                self.hangup(now)
                return
            if params != before:
                self._emit(MediaUpdated(self.handle, params))

    def _resend(self, tx: ClientTransaction, headers: dict[str, str]) -> None:
        """The same request again with a new CSeq and branch and some headers replaced."""
        if self.dialog is not None and self.state not in PRE_ANSWER:
            self.dialog.local_seq += 1
            seq = self.dialog.local_seq
        else:
            seq = tx.request.cseq.seq + 1
            if self.dialog is not None:
                self.dialog.local_seq = seq
        request = retried(tx.request, seq, headers)
        request.headers.prepend("Via", self.env.via(tx.peer))
        self._outputs.append(SendRequest(request, tx.peer))
        self._replaced(tx.request, request)

    def _replaced(self, old: Request, new: Request) -> None:
        """``new`` is sent in place of ``old`` (a digest or 422 retry)."""
        if old is self._our_reinvite:
            self._our_reinvite = new

    # ---- RFC 4028 session timer -----------------------------------------------------------------------------

    def _arm_session_timer(self, now: float) -> None:
        self.deadlines.clear()
        if self._timer is None or self.state is not CallState.CONFIRMED:
            return
        name, due = self._timer.next_deadline(now)
        self.deadlines[name] = due
        self._outputs.append(SetTimer(due))

    def handle_timer(self, now: float) -> None:
        if self.deadlines.get("refresh", now + 1) <= now:
            del self.deadlines["refresh"]
            self._send_refresh(now)
        if self.deadlines.get("expire", now + 1) <= now:
            del self.deadlines["expire"]
            self.hangup(now)
            self._end("session-expired")

    def _send_refresh(self, now: float) -> None:
        """UPDATE if the peer allows it, else a re-INVITE with the unchanged SDP (same ``o=`` version)."""
        if self.state is not CallState.CONFIRMED or self.media is None or self._timer is None:
            return
        use_update = "UPDATE" in self._remote_allow
        request = self._in_dialog_request("UPDATE" if use_update else "INVITE")
        request.headers.add("Session-Expires", self._timer.session_expires(answering=False))
        request.headers.add("Supported", "timer")
        if not use_update:
            current = self.media.current.direction if self.media.current else "sendrecv"
            request.headers.add("Content-Type", SDP)
            request.body = self.media.create_offer(current).to_bytes()
            self._our_reinvite = request
        self._send(request)
        self._arm_session_timer(now)


def allowed_methods(message: Request | Response) -> frozenset[str]:
    return frozenset(m.upper() for m in message.headers.tokens("Allow"))
