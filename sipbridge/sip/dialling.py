"""The dialling side (UAC) of a call: our INVITE, from the offer to the ACK of the 2xx.

Digest challenges and 422 are answered by sending the INVITE again (``Call._resend``); CANCEL waits for a
provisional response (RFC 3261 §9.1); a second 2xx from another fork is ACKed and released with BYE. With other
targets left (RFC 3263 §4.3), a target that sends nothing within ``failover_timeout``, cannot be reached, or
answers 503 before anything else is given up for the next one. A reliable 18x (RFC 3262) is acknowledged with PRACK
in its early dialog; its retransmissions are recognised by RSeq and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .auth import DigestCredentials
from .call import SDP, Call, allowed_methods
from .call_outputs import CallEnvironment, SendDatagram, SendRequest, SetTimer, Withdraw
from .call_state import CallState
from .capabilities import add_capabilities
from .dialog import Dialog, new_tag
from .errors import SipParseError
from .events import CallAnswered, CallHandle, CallProgress
from .message import Request, Response
from .offer_answer import MediaParams, MediaSession
from .reliable import RAck, RSeqTracker, rseq_of
from .retries import retried
from .sdp import parse_sdp
from .session_timer import SessionTimer
from .transaction import Address, ClientTransaction, address_for
from .uri import NameAddr, Uri, parse_name_addr

log = logging.getLogger(__name__)


class DiallingCall(Call):
    def __init__(self, env: CallEnvironment, handle: CallHandle, *, invite: Request, peer: Address) -> None:
        local_tag = invite.from_.tag or ""
        super().__init__(env, handle, inbound=False, invite=invite, peer=peer, local_tag=local_tag, dialog=None)
        self._invite_tx: ClientTransaction | None = None  # known once it brings a response
        self._cancel_pending = False
        self._cancelled = False
        self._ack: bytes | None = None
        self._ack_peer = peer
        self._alternatives: list[Address] = []  # RFC 3263 targets not tried yet
        self._rseqs = RSeqTracker()
        self._early: dict[str, Dialog] = {}  # early dialogs we PRACKed in, by the callee's tag

    @classmethod
    def dial(
        cls,
        env: CallEnvironment,
        handle: CallHandle,
        *,
        target: Uri,
        from_addr: NameAddr,
        to_addr: NameAddr | None = None,
        peer: Address,
        alternatives: Sequence[Address] = (),
        media: MediaSession,
        credentials: DigestCredentials | None,
        headers: dict[str, str] | None,
        now: float,
    ) -> DiallingCall:
        """A call whose INVITE, with our SDP offer, is its first output."""
        settings = env.settings
        request = Request(method="INVITE", uri=target)
        request.headers.add("Via", env.via(peer))
        for route in settings.outbound_routes:  # a preloaded route set (``peer`` is its first hop)
            request.headers.add("Route", route)
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(from_addr.with_tag(new_tag())))
        request.headers.add("To", str(to_addr or NameAddr(target)))
        request.headers.add("Call-ID", new_tag() + new_tag() + "@sipbridge")
        request.headers.add("CSeq", "1 INVITE")
        request.headers.add("Contact", env.contact(peer))
        add_capabilities(request, settings.user_agent)
        request.headers.add("Session-Expires", str(settings.session_expires))
        request.headers.add("Min-SE", str(settings.min_se))
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        request.headers.add("Content-Type", SDP)
        request.body = media.create_offer().to_bytes()
        call = cls(env, handle, invite=request, peer=peer)
        call.media = media
        call.credentials = credentials
        call._alternatives = list(alternatives)
        call._outputs.append(SendRequest(request, peer))
        call._arm_failover(now)
        return call

    # ---- RFC 3263 failover ----------------------------------------------------------------------------------

    def _arm_failover(self, now: float) -> None:
        if self._alternatives:
            due = now + self.env.settings.failover_timeout
            self.deadlines["failover"] = due
            self._outputs.append(SetTimer(due))

    def _may_fail_over(self) -> bool:
        return bool(self._alternatives) and self.state is CallState.CALLING and not (
            self._cancelled or self._cancel_pending
        )

    def _fail_over(self, why: str, now: float) -> None:
        """The INVITE again, as a new transaction, to the next target (without credentials for the last one)."""
        self.deadlines.pop("failover", None)
        self._outputs.append(Withdraw(self.invite))
        previous, self.peer = self.peer, self._alternatives.pop(0)
        log.info("call %s: %s at %s: trying %s", self.call_id, why, _where(previous), _where(self.peer))
        request = retried(self.invite, self.invite.cseq.seq + 1, {"Contact": self.env.contact(self.peer)})
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        request.headers.prepend("Via", self.env.via(self.peer))
        self._outputs.append(SendRequest(request, self.peer))
        self.invite, self._invite_tx, self._ack_peer = request, None, self.peer
        self._arm_failover(now)

    def handle_timer(self, now: float) -> None:
        if self.deadlines.get("failover", now + 1) <= now:
            del self.deadlines["failover"]
            if self._may_fail_over():
                self._fail_over("no response", now)
        super().handle_timer(now)

    # ---- giving up before the answer ------------------------------------------------------------------------

    def cancel(self, now: float) -> None:
        """CANCEL the INVITE; asking again is harmless. Sent once a provisional response arrived (§9.1)."""
        self._require("cancel", CallState.CALLING, CallState.EARLY)
        if self._cancelled or self._cancel_pending:
            return
        tx = self._invite_tx
        if tx is None:
            self._cancel_pending = True
            return
        self._cancelled = True
        request = Request(method="CANCEL", uri=tx.request.uri)
        for name in ("Via", "Route"):
            for value in tx.request.headers.get_all(name):
                request.headers.add(name, value)
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            request.headers.add(name, tx.request.headers.get(name) or "")
        request.headers.add("CSeq", f"{tx.request.cseq.seq} CANCEL")
        self._outputs.append(SendRequest(request, tx.peer))

    def _hang_up_unanswered(self, now: float) -> None:
        self.cancel(now)

    # ---- responses to the INVITE ----------------------------------------------------------------------------

    def _on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if tx.request is self.invite:
            self._on_invite_response(tx, response, now)
        else:
            super()._on_response(tx, response, now)

    def on_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        if tx.request is self.invite and self._may_fail_over():
            self._fail_over("no response" if status == 408 else "unreachable", now)
        elif tx.request is self.invite:
            self._end("timeout" if status == 408 else "unreachable", status=status)
        else:
            super().on_timeout(tx, now, status)

    def _replaced(self, old: Request, new: Request) -> None:
        if old is self.invite:
            self.invite = new
            self._invite_tx = None
        super()._replaced(old, new)

    def _on_invite_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        self._invite_tx = tx
        status = response.status
        self.deadlines.pop("failover", None)  # the target is alive
        if status == 503 and self._may_fail_over():
            self._fail_over("503", now)
            return
        if status < 200:
            rseq = rseq_of(response) if status > 100 else None
            if rseq is not None and response.to.tag:
                if not self._rseqs.is_new(response.to.tag, rseq):
                    return  # a retransmission (our PRACK is on its way) or one out of order
                self._prack(tx, response, rseq)
            if status > 100 and response.to.tag:
                self.state = CallState.EARLY
                self._emit(CallProgress(self.handle, status, response.reason, self._media_from(response)))
            if self._cancel_pending:
                self._cancel_pending = False
                self.cancel(now)
            return
        if self.final_response is None:
            self.final_response = response
        if status >= 300:
            self._end("cancel" if self._cancelled else "rejected", status=status)
            return
        if self.dialog is not None and self._ack is not None:
            if response.to.tag == self.dialog.remote_tag:
                self._outputs.append(SendDatagram(self._ack, self._ack_peer))  # 2xx retransmission: ACK again
            else:
                self._refuse_forked_answer(tx, response)
            return
        try:
            self.dialog = Dialog.for_uac(tx.request, response)
        except SipParseError:
            self._end("rejected", status=502)
            return
        early = self._early.get(self.dialog.remote_tag)
        if early is not None:  # CSeq goes on from our PRACKs
            self.dialog.local_seq = max(self.dialog.local_seq, early.local_seq)
        self._remote_allow = allowed_methods(response)
        self._acknowledge(tx)
        self.state = CallState.CONFIRMED
        if self._cancelled:
            self.hangup(now)  # the 200 crossed our CANCEL: the call still has to be hung up
            return
        params = self._media_from(response)
        if params is None:
            self.hangup(now)
            return
        self._timer = SessionTimer.dialling(response)
        self._arm_session_timer(now)
        self._emit(CallAnswered(self.handle, params))

    def _prack(self, tx: ClientTransaction, response: Response, rseq: int) -> None:
        """PRACK a reliable provisional response, in the early dialog it makes (RFC 3262 §4)."""
        tag = response.to.tag or ""
        try:
            early = self._early.get(tag) or Dialog.for_uac(tx.request, response)
            peer = address_for(early.next_hop(), self.peer.transport)
        except SipParseError:
            log.info("call %s: reliable %d without a usable Contact: cannot PRACK", self.call_id, response.status)
            return
        self._early[tag] = early
        prack = early.create_request("PRACK")
        prack.headers.add("RAck", str(RAck(rseq, tx.request.cseq.seq, "INVITE")))
        prack.headers.prepend("Via", self.env.via(peer))
        self._outputs.append(SendRequest(prack, peer))

    def _acknowledge(self, tx: ClientTransaction) -> None:
        assert self.dialog is not None
        ack = self.dialog.create_request("ACK", seq=tx.request.cseq.seq)
        for name in ("Authorization", "Proxy-Authorization"):
            if (value := tx.request.headers.get(name)) is not None:
                ack.headers.add(name, value)
        self._ack_peer = self._next_hop()
        self._ack = self._send_ack(ack, self._ack_peer)

    def _refuse_forked_answer(self, tx: ClientTransaction, response: Response) -> None:
        """A second 2xx from another fork: it must be ACKed, then released with BYE (RFC 3261 §13.2.2.4)."""
        try:
            other = Dialog.for_uac(tx.request, response)
            peer = address_for(other.next_hop(), self.peer.transport)
        except SipParseError:
            return
        self._send_ack(other.create_request("ACK", seq=tx.request.cseq.seq), peer)
        bye = other.create_request("BYE")
        bye.headers.prepend("Via", self.env.via(peer))
        self._outputs.append(SendRequest(bye, peer, owned=False))

    def _media_from(self, response: Response) -> MediaParams | None:
        answer = response.sdp
        if self.media is None or answer is None:
            return self.media.current if self.media else None
        try:
            return self.media.receive_answer(parse_sdp(answer))
        except SipParseError:
            return None


def first_hop(target: Uri, routes: Sequence[str]) -> Uri:
    """Where a new call to ``target`` goes: the first of the preloaded Route headers (``outbound_route_headers``,
    loose routing: the Request-URI stays the target), else the target itself."""
    return parse_name_addr(routes[0]).uri if routes else target


def _where(peer: Address) -> str:
    return f"{peer.transport.lower()}:{peer.host}:{peer.port}"
