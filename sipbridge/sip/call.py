"""One INVITE dialog usage, inbound (UAS) or outbound (UAC), as a sans-IO state machine.

The call owns its dialog, its SDP side (``MediaSession``) and its RFC 4028 session timer. It reacts to requests
and responses the ``UserAgent`` routes to it and reports through the agent's event queue. Every method takes
``now`` and only queues bytes; nothing here blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .auth import Credentials, DigestCheck
from .capabilities import add_capabilities, method_refused, options_response
from .dialog import Dialog
from .errors import SipParseError
from .events import (
    CallAcked,
    CallAnswered,
    CallEnded,
    CallProgress,
    DtmfReceived,
    MediaUpdated,
    TransferProgress,
)
from .headers import parse_header_params
from .info import DTMF, DTMF_RELAY, SIPFRAG, dtmf_relay_body, parse_dtmf_info, parse_sipfrag_status
from .message import Request, Response, response_to
from .offer_answer import MediaParams, MediaSession, NegotiationError
from .retries import digest_retry, interval_retry, retried
from .sdp import SessionDescription, parse_sdp
from .session_timer import SessionTimer
from .transaction import Address, ClientTransaction, ServerTransaction, address_for
from .uri import NameAddr, Uri

if TYPE_CHECKING:
    from .useragent import UserAgent

SDP = "application/sdp"


class Call:
    """States: incoming/calling → early → answered (UAS, waiting for ACK) → confirmed → closing (our BYE sent)
    → ended."""

    def __init__(
        self, ua: UserAgent, *, inbound: bool, invite: Request, peer: Address, local_tag: str, dialog: Dialog | None
    ) -> None:
        self.ua = ua
        self.inbound = inbound
        self.invite = invite
        self.call_id = invite.call_id  # constant for the call, also across authorised retries
        self.peer = peer  # where the INVITE came from (inbound) or went to (outbound)
        self.local_tag = local_tag
        self.dialog = dialog
        self.state = "incoming" if inbound else "calling"
        self.media: MediaSession | None = None
        self.credentials: Credentials | None = None
        self.offer: SessionDescription | None = None  # the remote offer of an inbound INVITE, if any
        self.deadlines: dict[str, float] = {}
        self.end_reason: str | None = None
        self.final_response: Response | None = None
        """The final response to our INVITE (outbound calls): its reason phrase and headers."""
        self._invite_tx: ServerTransaction | ClientTransaction | None = None
        self._reinvite_tx: ServerTransaction | None = None
        self._reinvite_awaits_answer = False
        self._ack: bytes | None = None
        self._ack_peer = peer
        self._remote_allow = _allow(invite) if inbound else frozenset[str]()
        self._cancel_pending = False
        self._cancelled = False
        self._timer: SessionTimer | None = None
        self._refresh_tx: ClientTransaction | None = None

    # ---- identity -------------------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    @property
    def session_interval(self) -> int | None:
        return self._timer.interval if self._timer else None

    def _end(self, reason: str, now: float, *, status: int | None = None, by_remote: bool = False) -> None:
        if self.ended:
            return
        self.state = "ended"
        self.end_reason = reason
        self.deadlines.clear()
        self.ua.forget(self)
        self.ua.emit(CallEnded(self, reason, status, by_remote))

    # ---- inbound (UAS) actions ------------------------------------------------------------------------------

    def _respond(
        self, status: int, now: float, *, reason: str = "", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        if not isinstance(self._invite_tx, ServerTransaction):
            raise RuntimeError("not an inbound call")
        response = response_to(self.invite, status, reason, to_tag=self.local_tag)
        if 100 < status < 300:
            response.headers.add("Contact", self.ua.contact(self.peer))
            add_capabilities(response, self.ua.settings.user_agent)
        for name, value in (headers or {}).items():
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        self._invite_tx.respond(response, now)

    def trying(self, now: float) -> None:
        """100 Trying, for ``hide_inbound_port`` where it is not sent automatically: once the caller is known."""
        if self.state == "incoming":
            self._respond(100, now)

    def ring(self, now: float) -> None:
        """180 Ringing."""
        if self.state in ("incoming", "early"):
            self.state = "early"
            self._respond(180, now)

    def progress(self, media: MediaSession, now: float) -> None:
        """183 Session Progress with the SDP answer, for early media. A delayed-offer INVITE gets a bare 183:
        an offer may not ride on an unreliable provisional response."""
        if self.state in ("incoming", "early"):
            body = self._local_sdp(media) if self.offer is not None else b""
            self.state = "early"
            self._respond(183, now, body=body)

    def answer(self, media: MediaSession, now: float, *, extra_headers: dict[str, str] | None = None) -> None:
        """200 OK (with e.g. a trunk's X-* headers). Raises NegotiationError (after a 488) when nothing fits."""
        if self.state not in ("incoming", "early"):
            raise RuntimeError(f"cannot answer a call in state {self.state}")
        try:
            body = self._local_sdp(media)
        except NegotiationError:
            self.reject(488, now)
            raise
        headers: dict[str, str] = dict(extra_headers or {})
        timer = SessionTimer.answering(self.invite)
        if timer is not None:
            self._timer = timer
            headers["Session-Expires"] = timer.session_expires(answering=True)
            if "timer" in self.invite.headers.tokens("Supported"):
                headers["Require"] = "timer"
        self.state = "answered"
        self._respond(200, now, body=body, headers=headers)

    def _local_sdp(self, media: MediaSession) -> bytes:
        if self.media is media and media.local is not None:
            return media.local.to_bytes()  # 183 then 200: the same answer
        self.media = media
        if self.offer is None:
            # Delayed offer: we offer in the 200, the answer comes in the ACK.
            return media.create_offer().to_bytes()
        return media.receive_offer(self.offer).to_bytes()

    def reject(self, status: int, now: float, *, reason: str = "", headers: dict[str, str] | None = None) -> None:
        """A final non-2xx answer (486 busy, 404, 603, ...)."""
        if self.state in ("incoming", "early"):
            self._respond(status, now, reason=reason, headers=headers)
            self._end("rejected", now, status=status)

    def challenge(self, now: float, *, proxy: bool = False, stale: bool = False) -> None:
        """401 (or 407) with a digest challenge; the peer's authorised retry arrives as a new IncomingCall."""
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        value = self.ua.digest.challenge(stale=stale)
        self.reject(407 if proxy else 401, now, headers={header: value})

    def authenticate(self, username: str, password: str) -> DigestCheck:
        """Check the INVITE's credentials (Authorization or Proxy-Authorization) for this user; an OK answer
        names the nonce use the caller must record as fresh before admitting the call (`sip.auth`)."""
        header = self.invite.headers.get("Authorization") or self.invite.headers.get("Proxy-Authorization")
        return self.ua.digest.verify(header, "INVITE", username, password)

    def drop(self, now: float) -> None:
        """Forget the INVITE without any answer (hide_inbound_port for unknown callers)."""
        if self.state in ("incoming", "early") and isinstance(self._invite_tx, ServerTransaction):
            self._invite_tx.abandon()
            self._end("dropped", now)

    # ---- both directions ------------------------------------------------------------------------------------

    def bye(self, now: float) -> None:
        """Hang up: BYE once confirmed, CANCEL while an outbound call is still ringing, 480 for inbound."""
        if self.ended or self.state == "closing":
            return
        if self.inbound and self.state in ("incoming", "early"):
            self.reject(480, now)
            return
        if not self.inbound and self.state in ("calling", "early"):
            self.cancel(now)
            return
        self._send_in_dialog("BYE", now)
        self.state = "closing"

    def cancel(self, now: float) -> None:
        if self.inbound or self.state not in ("calling", "early") or self._cancelled:
            return
        tx = self._invite_tx
        if not isinstance(tx, ClientTransaction) or tx.state == "calling":
            self._cancel_pending = True  # RFC 3261 §9.1: not before a provisional response
            return
        self._cancelled = True
        request = Request(method="CANCEL", uri=tx.request.uri)
        for name in ("Via", "Route"):
            for value in tx.request.headers.get_all(name):
                request.headers.add(name, value)
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            request.headers.add(name, tx.request.headers.get(name) or "")
        request.headers.add("CSeq", f"{tx.request.cseq.seq} CANCEL")
        self.ua.send_request(request, tx.peer, now, self, keep_via=True)

    def refer(
        self, target: Uri | str, now: float, *, referred_by: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Blind transfer: REFER, then TransferProgress events from the 202 and the NOTIFYs."""
        request = self._in_dialog_request("REFER")
        request.headers.add("Refer-To", f"<{target}>")
        request.headers.add("Referred-By", referred_by or str(NameAddr(self.dialog_or_raise().local_uri.uri)))
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        self._send(request, now)

    def reinvite(self, now: float, *, direction: str = "sendrecv") -> None:
        """Re-offer our media: ``sendonly`` holds the peer, ``sendrecv`` resumes. The answer arrives as
        MediaUpdated; a refused re-INVITE leaves the session as it was (RFC 3261 §14.1)."""
        if self.state != "confirmed" or self.media is None or self._reinvite_tx is not None:
            raise RuntimeError(f"cannot re-INVITE in state {self.state}")
        if self._refresh_tx is not None and self._refresh_tx.state in ("calling", "proceeding"):
            raise RuntimeError("a re-INVITE of ours is still pending")
        request = self._in_dialog_request("INVITE")
        if self._timer is not None:
            request.headers.add("Session-Expires", self._timer.session_expires(answering=False))
            request.headers.add("Supported", "timer")
        request.headers.add("Content-Type", SDP)
        request.body = self.media.create_offer(direction).to_bytes()
        self._refresh_tx = self._send(request, now)

    def send_info(self, digit: str, now: float, *, duration_ms: int = 250) -> None:
        """A DTMF digit as SIP INFO (application/dtmf-relay)."""
        request = self._in_dialog_request("INFO")
        request.headers.add("Content-Type", DTMF_RELAY)
        request.body = dtmf_relay_body(digit, duration_ms)
        self._send(request, now)

    def dialog_or_raise(self) -> Dialog:
        if self.dialog is None or self.ended:
            raise RuntimeError("no established dialog")
        return self.dialog

    def _in_dialog_request(self, method: str) -> Request:
        return self.dialog_or_raise().create_request(method)

    def _send_in_dialog(self, method: str, now: float) -> None:
        self._send(self._in_dialog_request(method), now)

    def _send(self, request: Request, now: float) -> ClientTransaction:
        request.headers.add("Contact", self.ua.contact(self._next_hop()))
        return self.ua.send_request(request, self._next_hop(), now, self)

    def _next_hop(self) -> Address:
        """In-dialog requests of an inbound call over TCP/TLS reuse the INVITE's connection while it is open;
        after that they go where the route set or Contact says."""
        if self.inbound and self.peer.reliable and self.ua.is_connected(self.peer):
            return self.peer
        return address_for(self.dialog_or_raise().next_hop(), self.peer.transport)

    # ---- requests routed to this call -----------------------------------------------------------------------

    def on_ack(self, ack: Request, now: float) -> None:
        tx = self._reinvite_tx if self._reinvite_tx is not None else self._invite_tx
        if not isinstance(tx, ServerTransaction) or not tx.receive_ack(now) or self.state == "closing":
            return
        params = self.media.current if self.media else None
        if self.media is not None and (answer := ack.sdp) is not None:
            try:
                params = self.media.receive_answer(parse_sdp(answer))
            except SipParseError:
                params = None
        if tx is self._invite_tx and params is None:  # a delayed offer whose ACK brought no usable answer
            self.state = "confirmed"
            self.bye(now)
            self._end("rejected", now, status=488)
            return
        if tx is self._reinvite_tx:
            self._reinvite_tx = None
            if self._reinvite_awaits_answer and params is not None:
                self.ua.emit(MediaUpdated(self, params))
            self._reinvite_awaits_answer = False
            return
        self.state = "confirmed"
        self._arm_session_timer(now)
        self.ua.emit(CallAcked(self, params))

    def on_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        dialog = self.dialog_or_raise()
        if not dialog.accepts_remote_cseq(request.cseq.seq):
            tx.respond(response_to(request, 500, "CSeq out of order"), now)
            return
        method = request.method
        if self.state == "answered" and isinstance(self._invite_tx, ServerTransaction):
            # Our 2xx evidently arrived (the ACK was lost or overtaken): stop retransmitting it.
            self._invite_tx.receive_ack(now)
        if method == "BYE":
            tx.respond(response_to(request, 200), now)
            if self.state in ("incoming", "early") and isinstance(self._invite_tx, ServerTransaction):
                self._invite_tx.respond(response_to(self.invite, 487, to_tag=self.local_tag), now)
            self._end("bye", now, by_remote=True)
        elif method in ("INVITE", "UPDATE"):
            self._on_offer_request(tx, request, now)
        elif method == "INFO":
            self._on_info(tx, request, now)
        elif method == "NOTIFY":
            self._on_notify(tx, request, now)
        elif method == "OPTIONS":
            tx.respond(options_response(request, self.ua.settings.user_agent), now)
        else:
            tx.respond(method_refused(request), now)

    def _on_offer_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        """re-INVITE or UPDATE: hold/unhold, address change, session refresh — answered from the offer itself."""
        if self.media is None or self.state not in ("confirmed", "answered"):
            tx.respond(response_to(request, 491 if request.method == "INVITE" else 500), now)
            return
        ours = self._refresh_tx
        ours_pending = ours is not None and ours.is_invite and ours.state in ("calling", "proceeding")
        if request.method == "INVITE" and (self._reinvite_tx is not None or ours_pending):
            tx.respond(response_to(request, 491), now)  # glare (RFC 3261 §14.2)
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
                tx.respond(response_to(request, exc.status if exc.status == 488 else 400), now)
                return
        elif request.method == "INVITE":
            # An offerless re-INVITE (often a resume from hold) gets our full offer; the answer is in the ACK.
            body = self.media.create_offer().to_bytes()
            self._reinvite_awaits_answer = True
        response = response_to(request, 200)
        response.headers.add("Contact", self.ua.contact(self.peer))
        add_capabilities(response, self.ua.settings.user_agent)
        if self._timer is not None:
            response.headers.add("Session-Expires", self._timer.session_expires(answering=True))
            if "timer" in request.headers.tokens("Supported"):
                response.headers.add("Require", "timer")
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        tx.respond(response, now)
        if request.method == "INVITE":
            self._reinvite_tx = tx
        self._arm_session_timer(now)
        if params is not None:
            self.ua.emit(MediaUpdated(self, params))

    def _on_info(self, tx: ServerTransaction, request: Request, now: float) -> None:
        content_type = request.content_type
        if request.body and content_type not in (DTMF, DTMF_RELAY):
            tx.respond(response_to(request, 415), now)
            return
        tx.respond(response_to(request, 200), now)
        dtmf = parse_dtmf_info(content_type, request.body)
        if dtmf is not None:
            self.ua.emit(DtmfReceived(self, dtmf[0], dtmf[1]))

    def _on_notify(self, tx: ServerTransaction, request: Request, now: float) -> None:
        event, _ = parse_header_params(request.headers.get("Event") or "")
        if event.lower() != "refer":
            tx.respond(response_to(request, 489, "Bad Event"), now)
            return
        tx.respond(response_to(request, 200), now)
        status = parse_sipfrag_status(request.body) if request.content_type == SIPFRAG else None
        state, _ = parse_header_params(request.headers.get("Subscription-State") or "")
        if status is not None:
            final = status >= 200 or state.lower() == "terminated"
            self.ua.emit(TransferProgress(self, status, final))

    # ---- responses to our requests --------------------------------------------------------------------------

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        method = tx.request.method
        retry = None
        if response.status in (401, 407) and self.credentials is not None:
            retry = digest_retry(tx.request, response, self.credentials)
        elif response.status == 422 and method == "INVITE":
            retry = interval_retry(tx.request, response)
        if retry is not None:
            self._resend(tx, now, retry)
            return
        if method == "INVITE" and tx is self._invite_tx:
            self._on_invite_response(tx, response, now)
        elif method == "INVITE":
            self._on_refresh_response(tx, response, now)
        elif method == "BYE" and response.status >= 200:
            self._end("bye", now, status=response.status)
        elif method == "REFER" and response.status >= 200:
            self.ua.emit(TransferProgress(self, response.status, final=response.status >= 300))
        elif method == "UPDATE" and response.status in (408, 481):
            self.bye(now)

    def on_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        """No final response (408), or the transport failed (503)."""
        method = tx.request.method
        if method == "INVITE" and tx is self._invite_tx:
            self._end("timeout" if status == 408 else "unreachable", now, status=status)
        elif method == "BYE":
            self._end("bye", now, status=status)
        elif method == "REFER":
            self.ua.emit(TransferProgress(self, status, final=True))
        elif method in ("INVITE", "UPDATE"):
            self.bye(now)  # a failed session refresh ends the call (RFC 4028 §10)

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if tx is self._invite_tx and self.state == "answered":
            self.state = "confirmed"  # no ACK for our 2xx: RFC 3261 §13.3.1.4 says end with BYE
            self.bye(now)
            self._end("ack-timeout", now)
        elif tx is self._reinvite_tx:
            self._reinvite_tx = None

    def _resend(self, tx: ClientTransaction, now: float, headers: dict[str, str]) -> None:
        """The same request again with a new CSeq and branch and some headers replaced."""
        if self.dialog is not None and self.state not in ("calling", "early"):
            self.dialog.local_seq += 1
            seq = self.dialog.local_seq
        else:
            seq = tx.request.cseq.seq + 1
            if self.dialog is not None:
                self.dialog.local_seq = seq
        request = retried(tx.request, seq, headers)
        new_tx = self.ua.send_request(request, tx.peer, now, self)
        if tx is self._invite_tx:
            self._invite_tx = new_tx
            self.invite = request

    def _on_invite_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            if status > 100 and response.to.tag:
                self.state = "early"
                params = self._media_from_response(response)
                self.ua.emit(CallProgress(self, status, response.reason, params))
            if self._cancel_pending:
                self._cancel_pending = False
                self.cancel(now)
            return
        if self.final_response is None:
            self.final_response = response
        if status >= 300:
            self._end("cancel" if self._cancelled else "rejected", now, status=status)
            return
        if self.dialog is not None and self._ack is not None:
            if response.to.tag == self.dialog.remote_tag:
                self.ua.send_raw(self._ack, self._ack_peer)  # 2xx retransmission: ACK again
            else:
                self._refuse_forked_answer(tx, response, now)
            return
        try:
            self.dialog = Dialog.for_uac(tx.request, response)
        except SipParseError:
            self._end("rejected", now, status=502)
            return
        self._remote_allow = _allow(response)
        self.ua.remember(self)
        self._send_ack(tx, now)
        if self._cancelled:
            self.state = "confirmed"
            self.bye(now)  # the 200 crossed our CANCEL: the call still has to be hung up
            return
        params = self._media_from_response(response)
        self.state = "confirmed"
        if params is None:
            self.bye(now)
            return
        self._timer = SessionTimer.dialling(response)
        self._arm_session_timer(now)
        self.ua.emit(CallAnswered(self, params))

    def _refuse_forked_answer(self, tx: ClientTransaction, response: Response, now: float) -> None:
        """A second 2xx from another fork: it must be ACKed, then released with BYE (RFC 3261 §13.2.2.4)."""
        try:
            other = Dialog.for_uac(tx.request, response)
            peer = address_for(other.next_hop(), self.peer.transport)
        except SipParseError:
            return
        ack = other.create_request("ACK", seq=tx.request.cseq.seq)
        self.ua.send_raw(self.ua.finish_stateless(ack, peer), peer)
        self.ua.send_request(other.create_request("BYE"), peer, now, None)

    def _media_from_response(self, response: Response) -> MediaParams | None:
        answer = response.sdp
        if self.media is None or answer is None:
            return self.media.current if self.media else None
        try:
            return self.media.receive_answer(parse_sdp(answer))
        except SipParseError:
            return None

    def _send_ack(self, tx: ClientTransaction, now: float) -> None:
        assert self.dialog is not None
        ack = self.dialog.create_request("ACK", seq=tx.request.cseq.seq)
        for name in ("Authorization", "Proxy-Authorization"):
            if (value := tx.request.headers.get(name)) is not None:
                ack.headers.add(name, value)
        self._ack_peer = self._next_hop()
        self._ack = self.ua.finish_stateless(ack, self._ack_peer)
        self.ua.send_raw(self._ack, self._ack_peer)

    def _on_refresh_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status < 200:
            return
        if response.status >= 300:
            if response.status in (408, 481):
                self.bye(now)
            return
        assert self.dialog is not None
        ack = self.dialog.create_request("ACK", seq=tx.request.cseq.seq)
        peer = self._next_hop()
        self.ua.send_raw(self.ua.finish_stateless(ack, peer), peer)
        if self.media is not None and (answer := response.sdp) is not None:
            before = self.media.current
            try:
                params = self.media.receive_answer(parse_sdp(answer))
            except SipParseError:
                self.bye(now)
                return
            if params != before:
                self.ua.emit(MediaUpdated(self, params))

    # ---- RFC 4028 session timers ----------------------------------------------------------------------------

    def _arm_session_timer(self, now: float) -> None:
        self.deadlines.pop("refresh", None)
        self.deadlines.pop("expire", None)
        if self._timer is None or self.state != "confirmed":
            return
        name, due = self._timer.next_deadline(now)
        self.deadlines[name] = due
        self.ua.call_timers.schedule(self, due)

    def handle_timer(self, now: float) -> None:
        if self.deadlines.get("refresh", now + 1) <= now:
            del self.deadlines["refresh"]
            self._send_refresh(now)
        if self.deadlines.get("expire", now + 1) <= now:
            del self.deadlines["expire"]
            self.bye(now)
            self._end("session-expired", now)

    def _send_refresh(self, now: float) -> None:
        if self.state != "confirmed" or self.media is None or self._timer is None:
            return
        use_update = "UPDATE" in self._remote_allow
        request = self._in_dialog_request("UPDATE" if use_update else "INVITE")
        request.headers.add("Session-Expires", self._timer.session_expires(answering=False))
        request.headers.add("Supported", "timer")
        if not use_update:
            current = self.media.current.direction if self.media.current else "sendrecv"
            request.headers.add("Content-Type", SDP)
            request.body = self.media.create_offer(current).to_bytes()
        self._refresh_tx = self._send(request, now)
        self._arm_session_timer(now)

    # ---- wiring used by the user agent ----------------------------------------------------------------------

    def attach_invite_transaction(self, tx: ServerTransaction | ClientTransaction) -> None:
        self._invite_tx = tx
        tx.owner = self

    def on_cancel(self, now: float) -> bool:
        """A CANCEL for our INVITE: 487 and end, unless the call was already answered."""
        if self.state not in ("incoming", "early"):
            return False
        self._respond(487, now)
        self._end("cancel", now, by_remote=True)
        return True


def _allow(message: Request | Response) -> frozenset[str]:
    return frozenset(m.upper() for m in message.headers.tokens("Allow"))
