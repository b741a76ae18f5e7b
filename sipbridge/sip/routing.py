"""Where the user agent's inputs go: bytes, timers and connection news routed to transactions, calls and
registrations, and what a call queues carried out before the input returns.

A request finds its server transaction (a retransmission), its dialog (an in-dialog request, an ACK for a 2xx),
the INVITE it cancels, or becomes a new call once the checks that need no owner pass (482 merged, 503 overload,
400 unparseable, 415/422 admission, Replaces); what no call wants is answered here (OPTIONS, 481, 405/501, 400
for malformed input). Responses and transaction timeouts go to the transaction's owner.

`useragent.UserAgent` adds what its owner reads and does; nothing here knows those actions.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from sipbridge.repeated_log import RepeatedEventLog

from .admission import refusal_of_invite, refusal_of_request
from .answering import AnsweringCall
from .call import Call
from .call_outputs import (
    Abandon,
    Emit,
    SendDatagram,
    SendRequest,
    SendResponse,
    StopRetransmitting,
    Withdraw,
)
from .call_table import CallTable
from .capabilities import method_refused, options_response
from .dialog import Dialog, new_tag
from .errors import SipParseError
from .events import Event, IncomingCall
from .locality import Locality
from .message import MessageError, Request, Response, parse_message, response_to
from .registration import Registration
from .registration_table import RegistrationTable
from .replaces import parse_replaces, refusal_status
from .return_path import response_address, stamp_via
from .sdp import parse_sdp
from .settings import SipSettings
from .timers import TimerHeap
from .transaction import Address, ClientTransaction, ServerTransaction, Transaction, TransactionLayer

log = logging.getLogger(__name__)


class InputRouter:
    def __init__(self, settings: SipSettings, locality: Locality) -> None:
        self.settings = settings
        self.locality = locality
        self.transactions = TransactionLayer(self, quiet_invites=settings.hide_inbound_port)
        self._events: deque[Event] = deque()
        self._calls = CallTable()
        self.call_timers: TimerHeap[Call] = TimerHeap()
        self.registrations = RegistrationTable(locality, self.transactions, self._events.append)
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
            self.registrations.connection_lost(peer, now)

    def transport_error(self, peer: Address, now: float) -> None:
        """The edge could not reach ``peer`` (connection refused, name not resolved)."""
        self.transactions.transport_failed(peer, now)

    def handle_timer(self, now: float) -> None:
        self.malformed.flush(now)
        due: list[Transaction | Call | Registration] = [
            *self.transactions.timers.pop_due(now), *self.call_timers.pop_due(now),
            *self.registrations.timers.pop_due(now),
        ]  # fmt: skip
        for owner in due:
            try:
                if isinstance(owner, Call):
                    with self._driving(owner, now):
                        owner.handle_timer(now)
                elif isinstance(owner, Registration):
                    self.registrations.handle_timer(owner, now)
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
            self.registrations.timers.next_deadline(),
            self.malformed.next_deadline(),
        )
        deadlines = [d for d in pending if d is not None]
        return min(deadlines, default=None)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # ---- carrying out a call's outputs ----------------------------------------------------------------------

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
            self.registrations.on_response(registration, tx, response, now)

    def on_client_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        if isinstance(call := tx.owner, Call):
            with self._driving(call, now):
                call.on_timeout(tx, now, status)
        elif isinstance(registration := tx.owner, Registration):
            self.registrations.on_timeout(registration, tx, now, status)

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if isinstance(call := tx.owner, Call):
            with self._driving(call, now):
                call.on_server_timeout(tx, now)

    # ---- messages -------------------------------------------------------------------------------------------

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
        call.registration = self.registrations.sent_over(request, peer)
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
