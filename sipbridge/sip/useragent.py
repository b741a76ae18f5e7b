"""The sans-IO SIP user agent: bytes, time and actions in; bytes, timers and events out (aioquic-style).

Inputs: ``receive_datagram(data, source, now)`` (one datagram or one framed stream message), ``handle_timer(now)``,
``connection_made(peer)`` / ``connection_lost(peer)`` for stream connections, ``transport_error(peer, now)``.
Outputs: ``datagrams_to_send()``, ``get_timer()``, ``next_event()``. Nothing raises out of
``receive_datagram``: malformed input is answered 400 (or dropped when ``hide_inbound_port`` is set) and logged.

Calls are named by ``CallHandle`` (events carry it); the owner reads a call with ``state`` and ``call_info`` and
acts on it with the methods below, each taking the handle.

An action the call's state does not allow raises ``LocalProtocolError``; the few that are harmless no-ops
instead (hanging up twice, giving up on a call that has ended) are listed in ``call_table``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from sipbridge.repeated_log import RepeatedEventLog

from .admission import refusal_of_invite, refusal_of_request
from .answering import AnsweringCall
from .auth import DigestCheck, DigestCredentials, DigestServer
from .call import Call
from .call_outputs import (
    Abandon,
    Emit,
    SendDatagram,
    SendRequest,
    SendResponse,
    SetTimer,
    StopRetransmitting,
    Withdraw,
)
from .call_state import CallInfo, CallState
from .call_table import CallSide, CallTable
from .capabilities import method_refused, options_response
from .dialling import DiallingCall, first_hop
from .dialog import Dialog, new_tag
from .errors import SipParseError
from .events import CallHandle, Event, IncomingCall
from .locality import Locality
from .message import MessageError, Request, Response, parse_message, response_to
from .offer_answer import MediaSession
from .registration import TOKEN_PARAM, Registration, RegistrationSpec
from .replaces import parse_replaces, refusal_status
from .return_path import response_address, stamp_via
from .sdp import parse_sdp
from .settings import SipSettings
from .timers import TimerHeap
from .transaction import Address, ClientTransaction, ServerTransaction, Transaction, TransactionLayer, address_for
from .uri import NameAddr, SipUri, Uri, parse_uri

log = logging.getLogger(__name__)


class UserAgent:
    def __init__(
        self, settings: SipSettings, *, local_host: str, local_host_v6: str | None = None, secret: bytes | None = None
    ) -> None:
        """``local_host``: the address put in Via/Contact (``advertised_host`` wins); ``local_host_v6`` is used
        instead towards IPv6 peers on a dual-stack node."""
        self.settings = settings
        self.locality = Locality(settings, local_host=local_host, local_host_v6=local_host_v6)
        self.digest = DigestServer(settings.realm, secret=secret)
        self.transactions = TransactionLayer(self, quiet_invites=settings.hide_inbound_port)
        self._events: deque[Event] = deque()
        self._calls = CallTable()
        self.call_timers: TimerHeap[Call] = TimerHeap()
        self._registrations: dict[int, Registration] = {}
        self.registration_timers: TimerHeap[Registration] = TimerHeap()
        self.parse_errors = 0
        self.malformed = RepeatedEventLog(log, "malformed SIP messages")
        """Bad input is logged a few lines at a time, however much of it arrives (docs/security.md)."""
        self.overloaded = False  # set by the edge when the node cannot keep up: new INVITEs get 503
        self.internal_errors = 0

    # ---- inputs ---------------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        if source.reliable:
            self.locality.connection_made(source)  # a message that came over a stream proves it is open
        try:
            message = parse_message(data, stream=source.transport in ("TCP", "TLS"))  # WebSocket frames messages
        except MessageError as exc:
            self.parse_errors += 1
            self.malformed.note(source.host, str(exc), now)
            if exc.request is not None and exc.request.method != "ACK":
                self._answer_malformed(exc.request, exc.status, source)
            return
        except SipParseError as exc:
            self.parse_errors += 1
            self.malformed.note(source.host, str(exc), now)
            return
        try:
            if isinstance(message, Response):
                self._receive_response(message, now)
            else:
                self._receive_request(message, source, now)
        except SipParseError as exc:  # a header only parsed on use (e.g. a bad Contact)
            self.parse_errors += 1
            self.malformed.note(source.host, f"{message.call_id}: {exc}", now)
            if isinstance(message, Request) and message.method != "ACK":
                self._answer_malformed(message, exc.status, source)
        except Exception:  # a bug of ours: contained to this message, counted so tests can insist on zero
            self.internal_errors += 1
            log.exception("failed to process SIP from %s (Call-ID %s)", source, message.call_id)
            if isinstance(message, Request) and message.method != "ACK":
                self._answer_malformed(message, 500, source)

    def connection_made(self, peer: Address) -> None:
        """The edge opened or accepted a stream connection with ``peer``."""
        self.locality.connection_made(peer)

    def connection_lost(self, peer: Address, now: float | None = None) -> None:
        """The stream connection with ``peer`` closed: an inbound call's in-dialog requests go to its Contact, and
        a registration through it registers again (given ``now``) over a new connection."""
        self.locality.connection_lost(peer)
        if now is not None:
            for registration in list(self._registrations.values()):
                if registration.spec.destination == peer and peer.reliable:
                    registration.flow_lost(now)
                    self._carry_out_registration(registration, now)

    def transport_error(self, peer: Address, now: float) -> None:
        """The edge could not reach ``peer`` (connection refused, name not resolved)."""
        self.transactions.transport_failed(peer, now)

    def handle_timer(self, now: float) -> None:
        self.malformed.flush(now)
        due: list[Transaction | Call | Registration] = [
            *self.transactions.timers.pop_due(now), *self.call_timers.pop_due(now),
            *self.registration_timers.pop_due(now),
        ]  # fmt: skip
        for owner in due:
            try:
                if isinstance(owner, Call):
                    with self._driving(owner, now):
                        owner.handle_timer(now)
                elif isinstance(owner, Registration):
                    owner.handle_timer(now)
                    self._carry_out_registration(owner, now)
                else:
                    owner.handle_timer(now)
            except Exception:  # as in receive: one broken call must not stop every other timer
                self.internal_errors += 1
                log.exception("timer handling failed")

    # ---- outputs --------------------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = self.transactions.outbox
        self.transactions.outbox = []
        return out

    def get_timer(self) -> float | None:
        pending = (
            self.transactions.next_deadline(),
            self.call_timers.next_deadline(),
            self.registration_timers.next_deadline(),
            self.malformed.next_deadline(),
        )
        deadlines = [d for d in pending if d is not None]
        return min(deadlines, default=None)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # ---- reading a call -------------------------------------------------------------------------------------

    def state(self, handle: CallHandle) -> CallState:
        """Any handle this agent issued: ENDED once the call is over."""
        return self._calls.state(handle)

    def call_info(self, handle: CallHandle) -> CallInfo:
        """A snapshot of a call that has not ended (an ended call's CallEnded event carries what outlives it)."""
        call = self._calls.live("call_info", handle)
        assert call is not None  # call_info is no harmless action: an ended handle raised
        return call.info()

    @property
    def active_calls(self) -> int:
        """Calls with a dialog (inbound from their INVITE on, outbound once answered)."""
        return len(self._calls)

    def carries_calls(self, peer: Address) -> bool:
        """Whether a call still signals through ``peer`` (a stream connection must then stay open)."""
        return self._calls.carry(peer)

    # ---- registrations ----------------------------------------------------------------------------------------

    def register(self, spec: RegistrationSpec, now: float) -> int:
        """Start registering (RFC 3261 §10) and keep the binding up until ``unregister``; RegistrationChanged
        events tell how it goes. Returns the registration's handle."""
        handle = len(self._registrations) + 1
        registration = Registration(self.locality, handle, spec)
        self._registrations[handle] = registration
        registration.start(now)
        self._carry_out_registration(registration, now)
        return handle

    def unregister(self, handle: int, now: float) -> None:
        """Remove the binding (``Expires: 0``); again, or once unregistered, nothing."""
        registration = self._registrations[handle]
        registration.unregister(now)
        self._carry_out_registration(registration, now)

    def registration(self, handle: int) -> Registration:
        """The registration's state as it is now (for reading only)."""
        return self._registrations[handle]

    def _carry_out_registration(self, registration: Registration, now: float) -> None:
        for output in registration.take_outputs():
            if isinstance(output, SendRequest):
                tx = self.transactions.start_client(output.request, output.peer, now)
                tx.owner = registration
            elif isinstance(output, SendDatagram):
                self.transactions.send(output.data, output.peer)
            elif isinstance(output, Emit):
                self._events.append(output.event)
            elif isinstance(output, SetTimer):
                self.registration_timers.schedule(registration, output.due)

    def _registration_for(self, request: Request, source: Address) -> str | None:
        """The registration an INVITE came over: its Request-URI carries that registration's token, and it comes
        from the address we register with (a stranger who learnt the token gets no trunk's trust from it)."""
        uri = request.uri
        token = uri.params.get(TOKEN_PARAM) if isinstance(uri, SipUri) else None
        if not token:
            return None
        for registration in self._registrations.values():
            if registration.token == token:
                if registration.spec.destination.host == source.host:
                    return registration.spec.name
                log.info("INVITE %s names registration %s but comes from %s: not taken as sent over it",
                         request.call_id, registration.spec.name, source.host)  # fmt: skip
        return None

    # ---- actions: placing a call ----------------------------------------------------------------------------

    def invite(
        self,
        target: Uri | str,
        media: MediaSession,
        now: float,
        *,
        from_uri: Uri | str,
        display_name: str | None = None,
        to: NameAddr | None = None,
        destination: Address | None = None,
        alternatives: Sequence[Address] = (),
        transport: str = "UDP",
        credentials: DigestCredentials | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallHandle:
        """Send an INVITE with our SDP offer to ``target`` (the Request-URI). ``to`` defaults to the target
        itself, ``destination`` (where the INVITE goes) to the host and port of the first outbound Route, else of
        the target. ``alternatives`` are where it goes next (RFC 3263 §4.3) when a target times out, cannot be
        reached or answers 503."""
        target_uri = parse_uri(target) if isinstance(target, str) else target
        from_addr = NameAddr(parse_uri(from_uri) if isinstance(from_uri, str) else from_uri, display_name)
        call = DiallingCall.dial(
            self.locality, self._calls.new_handle(), target=target_uri, from_addr=from_addr, to_addr=to,
            peer=destination or address_for(first_hop(target_uri, self.settings.outbound_routes), transport),
            alternatives=alternatives, media=media, credentials=credentials, headers=headers, now=now,
        )  # fmt: skip
        self._carry_out(call, now)
        return call.handle

    def cancel(self, handle: CallHandle, now: float) -> None:
        """CANCEL our INVITE (``hangup`` does this for an unanswered outbound call)."""
        self._act_on("cancel", handle, DiallingCall, now, lambda call: call.cancel(now))

    # ---- actions: answering a call --------------------------------------------------------------------------

    def authenticate(
        self, handle: CallHandle, username: str, password: str, realm: str | None = None
    ) -> DigestCheck:
        """Check the INVITE's credentials (Authorization or Proxy-Authorization) for this user; an OK answer
        names the nonce use the caller must record as fresh before admitting the call (``sip.auth``)."""
        call = self._calls.side("authenticate", handle, AnsweringCall)
        assert call is not None  # authenticate is no harmless action: an ended handle raised
        header = call.invite.headers.get("Authorization") or call.invite.headers.get("Proxy-Authorization")
        return self.digest.verify(header, "INVITE", username, password, realm)

    def trying(self, handle: CallHandle, now: float) -> None:
        """100 Trying, only needed with ``hide_inbound_port``, once the call flow knows the caller."""
        self._act_on("trying", handle, AnsweringCall, now, lambda call: call.trying(now))

    def ring(self, handle: CallHandle, now: float) -> None:
        """180 Ringing."""
        self._act_on("ring", handle, AnsweringCall, now, lambda call: call.ring(now))

    def progress(self, handle: CallHandle, media: MediaSession, now: float) -> None:
        """183 with our SDP answer (early media); a bare 183 for a delayed offer."""
        self._act_on("progress", handle, AnsweringCall, now, lambda call: call.progress(media, now))

    def answer(
        self, handle: CallHandle, media: MediaSession, now: float, *, extra_headers: dict[str, str] | None = None
    ) -> None:
        """200 OK; CallAcked follows with the ACK. Raises NegotiationError (after a 488) when nothing fits."""
        self._act_on(
            "answer", handle, AnsweringCall, now, lambda call: call.answer(media, now, extra_headers=extra_headers)
        )

    def reject(
        self, handle: CallHandle, status: int, now: float, *, reason: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """A final non-2xx response (486, 404, 603, ...)."""
        self._act_on(
            "reject", handle, AnsweringCall, now, lambda call: call.reject(status, now, reason=reason, headers=headers)
        )

    def challenge(
        self, handle: CallHandle, now: float, *, proxy: bool = False, stale: bool = False, realm: str | None = None
    ) -> None:
        """401 (407 with ``proxy``) with a digest challenge (in ``realm``, else ours); the authorised retry arrives
        as a new IncomingCall."""
        digest = self.digest
        self._act_on(
            "challenge",
            handle,
            AnsweringCall,
            now,
            lambda call: call.challenge(digest.challenge(stale=stale, realm=realm), now, proxy=proxy),
        )

    def drop(self, handle: CallHandle, now: float) -> None:
        """No answer at all (``hide_inbound_port``, for callers we do not know)."""
        self._act_on("drop", handle, AnsweringCall, now, lambda call: call.drop(now))

    # ---- actions: either side -------------------------------------------------------------------------------

    def hangup(self, handle: CallHandle, now: float, headers: Mapping[str, str] | None = None) -> None:
        """BYE (with ``headers`` added) once answered; before, CANCEL (outbound) or 480 (inbound)."""
        self._act("hangup", handle, now, lambda call: call.hangup(now, headers))

    def refer(
        self,
        handle: CallHandle,
        target: Uri | str,
        now: float,
        *,
        referred_by: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Blind transfer: REFER, then TransferProgress events from the 202 and the NOTIFYs."""
        self._act("refer", handle, now, lambda call: call.refer(target, now, referred_by=referred_by, headers=headers))

    def reinvite(self, handle: CallHandle, now: float, *, direction: str = "sendrecv") -> None:
        """Re-offer our media (``sendonly`` holds, ``sendrecv`` resumes); the outcome arrives as MediaUpdated."""
        self._act("reinvite", handle, now, lambda call: call.reinvite(now, direction=direction))

    def send_info(self, handle: CallHandle, digit: str, now: float, *, duration_ms: int = 250) -> None:
        """A DTMF digit as SIP INFO (application/dtmf-relay)."""
        self._act("send_info", handle, now, lambda call: call.send_info(digit, now, duration_ms=duration_ms))

    # ---- handles and outputs --------------------------------------------------------------------------------

    def _act(self, action: str, handle: CallHandle, now: float, step: Callable[[Call], None]) -> None:
        if (call := self._calls.live(action, handle)) is not None:
            with self._driving(call, now):
                step(call)

    def _act_on(
        self, action: str, handle: CallHandle, side: type[CallSide], now: float, step: Callable[[CallSide], None]
    ) -> None:
        if (call := self._calls.side(action, handle, side)) is not None:
            with self._driving(call, now):
                step(call)

    @contextmanager
    def _driving(self, call: Call, now: float) -> Iterator[None]:
        """Whatever the call does inside, and even if it raises, its outputs are carried out right after."""
        try:
            yield
        finally:
            self._carry_out(call, now)

    def _carry_out(self, call: Call, now: float) -> None:
        for output in call.take_outputs():
            if isinstance(output, SendRequest):
                tx = self.transactions.start_client(output.request, output.peer, now)
                tx.owner = call if output.owned else None
            elif isinstance(output, SendResponse):
                output.tx.respond(output.response, now)
            elif isinstance(output, StopRetransmitting):
                output.tx.receive_ack(now)
            elif isinstance(output, Abandon):
                output.tx.abandon()
            elif isinstance(output, Withdraw):
                self.transactions.withdraw(output.request)
            elif isinstance(output, SendDatagram):
                self.transactions.send(output.data, output.peer)
            elif isinstance(output, Emit):
                self._events.append(output.event)
            else:
                self.call_timers.schedule(call, output.due)
        self._calls.settle(call)

    # ---- transaction user callbacks -------------------------------------------------------------------------

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if isinstance(call := tx.owner, Call):
            with self._driving(call, now):
                call.on_response(tx, response, now)
        elif isinstance(registration := tx.owner, Registration):
            registration.on_response(tx, response, now)
            self._carry_out_registration(registration, now)

    def on_client_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        if isinstance(call := tx.owner, Call):
            with self._driving(call, now):
                call.on_timeout(tx, now, status)
        elif isinstance(registration := tx.owner, Registration):
            registration.on_timeout(tx, now, status)
            self._carry_out_registration(registration, now)

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if isinstance(call := tx.owner, Call):
            with self._driving(call, now):
                call.on_server_timeout(tx, now)

    # ---- inbound routing ------------------------------------------------------------------------------------

    def _receive_response(self, response: Response, now: float) -> None:
        tx = self.transactions.match_response(response)
        if tx is not None:
            tx.receive(response, now)
        else:
            log.debug("stray response %s for %s", response.status, response.call_id)

    def _receive_request(self, request: Request, source: Address, now: float) -> None:
        stamp_via(request, source)
        peer = response_address(request, source)
        tx = self.transactions.match_request(request)
        if request.method == "ACK":
            # An ACK for a 2xx is the dialog's business, even from peers that reuse the INVITE's branch for it.
            if tx is not None and tx.state != "accepted":
                tx.receive_ack(now)
            elif (call := self._calls.for_request(request)) is not None:
                with self._driving(call, now):
                    call.on_ack(request, now)
            return
        if tx is not None:
            tx.receive_retransmission()
            return
        if request.method == "CANCEL":
            self._receive_cancel(request, peer, now)
            return
        tx = self.transactions.start_server(request, peer, now)
        rejection = refusal_of_request(request)
        if rejection is not None:
            tx.respond(rejection, now)
            return
        if request.to.tag:
            call = self._calls.for_request(request)
            if call is None:
                tx.respond(response_to(request, 481), now)
            else:
                tx.owner = call
                with self._driving(call, now):
                    call.on_request(tx, request, now)
        elif request.method == "INVITE":
            self._new_inbound_call(tx, request, peer, now)
        elif request.method == "OPTIONS":
            tx.respond(options_response(request, self.settings.user_agent), now)
        elif request.method in ("BYE", "INFO", "UPDATE", "NOTIFY", "REFER"):
            tx.respond(response_to(request, 481, to_tag=new_tag()), now)
        else:
            tx.respond(method_refused(request), now)

    def _new_inbound_call(self, tx: ServerTransaction, request: Request, peer: Address, now: float) -> None:
        local_tag = new_tag()
        if self._calls.is_merged(request):
            tx.respond(response_to(request, 482, to_tag=local_tag), now)
            return
        limit = self.settings.max_pending_invites
        if self.overloaded or (limit and self._calls.pending_invites() >= limit):
            response = response_to(request, 503, to_tag=local_tag)
            response.headers.add("Retry-After", "1")
            tx.respond(response, now)  # overload: refuse early rather than let retransmissions pile up
            return
        try:
            dialog = Dialog.for_uas(request, local_tag)
            sdp = request.sdp
            offer = parse_sdp(sdp) if sdp is not None else None
            replaces = parse_replaces(request)
        except SipParseError as exc:
            log.info("rejecting INVITE %s: %s", request.call_id, exc)
            tx.respond(response_to(request, exc.status, to_tag=local_tag), now)
            return
        refusal = refusal_of_invite(request, offer, local_tag, self.settings.min_se)
        if refusal is not None:
            tx.respond(refusal, now)
            return
        replaced: Call | None = None
        if replaces is not None:
            replaced = self._calls.by_dialog(replaces.call_id, replaces.to_tag)
            status = refusal_status(replaces, replaced)
            if status is not None:
                log.info("INVITE %s: Replaces %s refused with %d", request.call_id, replaces.call_id, status)
                tx.respond(response_to(request, status, to_tag=local_tag), now)
                return
        call = AnsweringCall(
            self.locality, self._calls.new_handle(), invite=request, peer=peer, local_tag=local_tag, dialog=dialog,
            offer=offer, tx=tx,
        )  # fmt: skip
        call.registration = self._registration_for(request, peer)
        call.replaces = replaced.handle if replaced is not None else None
        tx.owner = call
        self._calls.settle(call)
        self._events.append(IncomingCall(call.handle))

    def _receive_cancel(self, cancel: Request, peer: Address, now: float) -> None:
        tx = self.transactions.start_server(cancel, peer, now)
        invite_tx = self.transactions.invite_for_cancel(cancel)
        if invite_tx is None:
            tx.respond(response_to(cancel, 481, to_tag=new_tag()), now)
            return
        call = invite_tx.owner
        local_tag = call.local_tag if isinstance(call, Call) else new_tag()
        tx.respond(response_to(cancel, 200, to_tag=local_tag), now)
        if isinstance(call, AnsweringCall):
            with self._driving(call, now):
                call.on_cancel(now)
        elif invite_tx.state == "proceeding":
            invite_tx.respond(response_to(invite_tx.request, 487, to_tag=local_tag), now)

    def _answer_malformed(self, request: Request, status: int, source: Address) -> None:
        if self.settings.hide_inbound_port:
            return
        try:
            stamp_via(request, source)
            response = response_to(request, status if status >= 400 else 400, to_tag=new_tag())
            self.transactions.send(response.to_bytes(), response_address(request, source))
        except SipParseError:
            pass  # not even enough to address an answer
