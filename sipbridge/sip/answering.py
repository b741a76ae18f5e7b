"""The answering side (UAS) of a call: the caller's INVITE transaction, from 100 Trying to the ACK of our 2xx.

The owner decides (trying, ring, progress, answer, reject, challenge, drop); the peer may CANCEL until the final
response, or send BYE in the early dialog. A 2xx is retransmitted until its ACK; no ACK within 64·T1 ends the call
with BYE.

When the caller requires or supports 100rel (RFC 3262), our 18x are sent reliably: numbered (RSeq), one at a time,
retransmitted from T1 doubling until the caller's PRACK, and given up with 504 after 64·T1. A 2xx waits for the PRACK
of a provisional response that carried our SDP answer.
"""

from __future__ import annotations

from .call import SDP, Call, allowed_methods
from .call_outputs import Abandon, CallEnvironment, SendResponse, SetTimer, StopRetransmitting
from .call_state import CallState
from .capabilities import add_capabilities
from .dialog import Dialog
from .events import CallAcked, CallHandle
from .message import Request, Response, response_to
from .offer_answer import MediaSession, NegotiationError
from .reliable import first_rseq, make_reliable, parse_rack, rseq_of, wanted_by
from .sdp import SessionDescription
from .session_timer import SessionTimer
from .transaction import T1, Address, ServerTransaction

_UNANSWERED = (CallState.INCOMING, CallState.EARLY)


class AnsweringCall(Call):
    def __init__(
        self,
        env: CallEnvironment,
        handle: CallHandle,
        *,
        invite: Request,
        peer: Address,
        local_tag: str,
        dialog: Dialog,
        offer: SessionDescription | None,
        tx: ServerTransaction,
    ) -> None:
        super().__init__(env, handle, inbound=True, invite=invite, peer=peer, local_tag=local_tag, dialog=dialog)
        self.offer = offer
        self._invite_tx = tx
        self._remote_allow = allowed_methods(invite)
        self._reliable = wanted_by(invite)  # RFC 3262: our 18x go reliably
        self._rseq = first_rseq() - 1
        self._unacked: Response | None = None  # the reliable 18x waiting for its PRACK
        self._queued: list[Response] = []  # reliable 18x waiting for the one before to be PRACKed
        self._held_final: Response | None = None  # our 2xx, waiting for the PRACK of an 18x with our SDP
        self._retransmit_interval = T1
        self._give_up_at = 0.0

    # ---- the owner's decisions ------------------------------------------------------------------------------

    def trying(self, now: float) -> None:
        """100 Trying, for ``hide_inbound_port`` where it is not sent automatically: once the caller is known."""
        self._require("trying", CallState.INCOMING)
        self._respond(100, now)

    def ring(self, now: float) -> None:
        """180 Ringing."""
        self._require("ring", *_UNANSWERED)
        self.state = CallState.EARLY
        self._respond(180, now)

    def progress(self, media: MediaSession, now: float) -> None:
        """183 Session Progress with the SDP answer, for early media. A delayed-offer INVITE gets a bare 183:
        an offer may not ride on an unreliable provisional response."""
        self._require("progress", *_UNANSWERED)
        body = self._local_sdp(media) if self.offer is not None else b""
        self.state = CallState.EARLY
        self._respond(183, now, body=body)

    def answer(self, media: MediaSession, now: float, *, extra_headers: dict[str, str] | None = None) -> None:
        """200 OK (with e.g. a trunk's X-* headers). Raises NegotiationError (after a 488) when nothing fits."""
        self._require("answer", *_UNANSWERED)
        try:
            body = self._local_sdp(media)
        except NegotiationError:
            self._refuse(488, now)
            raise
        headers: dict[str, str] = dict(extra_headers or {})
        timer = SessionTimer.answering(self.invite)
        if timer is not None:
            self._timer = timer
            headers["Session-Expires"] = timer.session_expires(answering=True)
            if "timer" in self.invite.headers.tokens("Supported"):
                headers["Require"] = "timer"
        self.state = CallState.ANSWERED
        self._respond(200, now, body=body, headers=headers)

    def reject(self, status: int, now: float, *, reason: str = "", headers: dict[str, str] | None = None) -> None:
        """A final non-2xx answer (486 busy, 404, 603, ...)."""
        self._require("reject", *_UNANSWERED)
        self._refuse(status, now, reason=reason, headers=headers)

    def challenge(self, challenge: str, now: float, *, proxy: bool = False) -> None:
        """401 (or 407) carrying a digest challenge; the peer's authorised retry arrives as a new call."""
        self._require("challenge", *_UNANSWERED)
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        self._refuse(407 if proxy else 401, now, headers={header: challenge})

    def drop(self, now: float) -> None:
        """Forget the INVITE without any answer (hide_inbound_port for unknown callers)."""
        self._require("drop", *_UNANSWERED)
        self._outputs.append(Abandon(self._invite_tx))
        self._end("dropped")

    def _hang_up_unanswered(self, now: float) -> None:
        self._refuse(480, now)

    def _refuse(self, status: int, now: float, *, reason: str = "", headers: dict[str, str] | None = None) -> None:
        self._respond(status, now, reason=reason, headers=headers)
        self._end("rejected", status=status)

    def _local_sdp(self, media: MediaSession) -> bytes:
        if self.media is media and media.local is not None:
            return media.local.to_bytes()  # 183 then 200: the same answer
        self.media = media
        if self.offer is None:
            # Delayed offer: we offer in the 200, the answer comes in the ACK.
            return media.create_offer().to_bytes()
        return media.receive_offer(self.offer).to_bytes()

    def _respond(
        self, status: int, now: float, *, reason: str = "", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """A response on the INVITE's transaction (reliably for an 18x when the caller wants 100rel)."""
        response = response_to(self.invite, status, reason, to_tag=self.local_tag)
        if status > 100 and self.env.settings.add_record_route:
            # On top of the INVITE's own: the caller's route set then ends at this node, whatever the Contact says.
            response.headers.prepend("Record-Route", self.env.record_route(self.peer))
        if 100 < status < 300:
            response.headers.add("Contact", self.env.contact(self.peer))
            add_capabilities(response, self.env.settings.user_agent)
        for name, value in (headers or {}).items():
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        if 100 < status < 200 and self._reliable:
            self._rseq += 1
            make_reliable(response, self._rseq)
            self._send_reliable(response, now)
            return
        if status >= 200 and self._unacked is not None:
            if status < 300 and self._unacked.body:
                self._held_final = response  # RFC 3262 §3: not before the PRACK of the 18x with our answer
                return
            self._stop_reliable()
        self._outputs.append(SendResponse(self._invite_tx, response))

    # ---- reliable provisional responses (RFC 3262) ----------------------------------------------------------

    def _send_reliable(self, response: Response, now: float) -> None:
        if self._unacked is not None:
            self._queued.append(response)
            return
        self._unacked = response
        self._retransmit_interval = T1
        self._give_up_at = now + 64 * T1
        self._outputs.append(SendResponse(self._invite_tx, response))
        self._arm_retransmission(now + T1)

    def _arm_retransmission(self, due: float) -> None:
        self.deadlines["rel1xx"] = due
        self._outputs.append(SetTimer(due))

    def _stop_reliable(self) -> None:
        self._unacked = None
        self._queued.clear()
        self.deadlines.pop("rel1xx", None)

    def handle_timer(self, now: float) -> None:
        if self._unacked is not None and self.deadlines.get("rel1xx", now + 1) <= now:
            del self.deadlines["rel1xx"]
            if now >= self._give_up_at:
                self._stop_reliable()
                self._held_final = None
                self._refuse(504, now, reason="No PRACK")  # RFC 3262 §3: a 5xx when no PRACK came
                return
            self._outputs.append(SendResponse(self._invite_tx, self._unacked))
            self._retransmit_interval *= 2
            self._arm_retransmission(min(now + self._retransmit_interval, self._give_up_at))
        super().handle_timer(now)

    def _on_prack(self, tx: ServerTransaction, request: Request, now: float) -> None:
        rack, unacked = parse_rack(request.headers.get("RAck")), self._unacked
        if (
            unacked is None or rack is None or rack.rseq != rseq_of(unacked)
            or rack.cseq != self.invite.cseq.seq or rack.method != "INVITE"
        ):  # fmt: skip
            self._reply(tx, response_to(request, 481))
            return
        self._reply(tx, response_to(request, 200))
        self._unacked = None
        self.deadlines.pop("rel1xx", None)
        if self._queued:
            self._send_reliable(self._queued.pop(0), now)
        elif self._held_final is not None:
            final, self._held_final = self._held_final, None
            self._outputs.append(SendResponse(self._invite_tx, final))

    # ---- what the peer does ---------------------------------------------------------------------------------

    def on_cancel(self, now: float) -> None:
        """A CANCEL for the INVITE: 487 and end, unless the call was already answered."""
        if self.state in _UNANSWERED or self._held_final is not None:
            self._stop_reliable()
            self._held_final = None
            self._respond(487, now)
            self._end("cancel", by_remote=True)

    def on_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        if not self._in_order(tx, request):
            return
        if request.method == "PRACK":
            self._on_prack(tx, request, now)
            return
        if self.state is CallState.ANSWERED and self._held_final is None:
            # Our 2xx evidently arrived (the ACK was lost or overtaken): stop retransmitting it.
            self._outputs.append(StopRetransmitting(self._invite_tx))
        if request.method == "BYE" and (self.state in _UNANSWERED or self._held_final is not None):
            self._reply(tx, response_to(request, 200))
            self._stop_reliable()
            self._held_final = None
            self._respond(487, now)  # a BYE in the early dialog ends the INVITE too (RFC 3261 §15.1.2)
            self._end("bye", by_remote=True)
            return
        self._serve(tx, request, now)

    def on_ack(self, ack: Request, now: float) -> None:
        if self._reinvite_tx is not None:
            super().on_ack(ack, now)
            return
        if not self._acknowledges(self._invite_tx):
            return
        params = self._answer_in(ack)
        self.state = CallState.CONFIRMED
        if params is None:  # a delayed offer whose ACK brought no usable answer
            self.hangup(now)
            self._end("rejected", status=488)
            return
        self._arm_session_timer(now)
        self._emit(CallAcked(self.handle, params))

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if tx is self._invite_tx and self.state is CallState.ANSWERED:
            self.state = CallState.CONFIRMED  # no ACK for our 2xx: RFC 3261 §13.3.1.4 says end with BYE
            self.hangup(now)
            self._end("ack-timeout")
        else:
            super().on_server_timeout(tx, now)
