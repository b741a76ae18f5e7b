"""The sans-IO SIP user agent: bytes and time in, bytes, timers and events out (aioquic-style).

``receive_datagram(data, source, now)`` takes one datagram or one framed stream message;
``datagrams_to_send()`` hands back what to send and where; ``get_timer()`` / ``handle_timer(now)`` drive every
RFC timer; ``next_event()`` yields ``events``. Nothing raises out of ``receive_datagram``: malformed input is
answered 400 (or dropped when ``hide_inbound_port`` is set) and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from sipbridge.repeated_log import RepeatedEventLog

from .admission import refusal_of_invite, refusal_of_request
from .auth import Credentials, DigestServer
from .call import Call
from .capabilities import add_capabilities, method_refused, options_response
from .dialog import Dialog, new_tag
from .errors import SipParseError
from .events import Event, IncomingCall
from .headers import Via
from .message import MessageError, Request, Response, parse_message, response_to
from .offer_answer import MediaSession
from .return_path import response_address, stamp_via
from .sdp import parse_sdp
from .settings import SipSettings
from .timers import TimerHeap
from .transaction import (
    Address,
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
    address_for,
    new_branch,
)
from .uri import NameAddr, Uri, format_host, parse_uri

log = logging.getLogger(__name__)


class UserAgent:
    def __init__(
        self, settings: SipSettings, *, local_host: str, local_host_v6: str | None = None, secret: bytes | None = None
    ) -> None:
        """``local_host``: the address put in Via/Contact (``advertised_host`` wins); ``local_host_v6`` is used
        instead towards IPv6 peers on a dual-stack node."""
        self.settings = settings
        self.host = settings.advertised_host or local_host
        self.host_v6 = settings.advertised_host_v6 or local_host_v6
        self.digest = DigestServer(settings.realm, secret=secret)
        self.transactions = TransactionLayer(self, quiet_invites=settings.hide_inbound_port)
        self._events: deque[Event] = deque()
        self._calls: dict[tuple[str, str], Call] = {}  # (Call-ID, our tag)
        self.call_timers: TimerHeap[Call] = TimerHeap()
        # Set by the edge: whether a stream connection to an address is open right now.
        self.is_connected: Callable[[Address], bool] = lambda peer: True
        self.parse_errors = 0
        self.malformed = RepeatedEventLog(log, "malformed SIP messages")
        """Bad input is logged a few lines at a time, however much of it arrives (docs/security.md)."""
        self.overloaded = False  # set by the edge when the node cannot keep up: new INVITEs get 503
        self.internal_errors = 0

    # ---- aioquic-style surface ------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        try:
            message = parse_message(data, stream=source.reliable)
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

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = self.transactions.outbox
        self.transactions.outbox = []
        return out

    def get_timer(self) -> float | None:
        pending = (
            self.transactions.next_deadline(),
            self.call_timers.next_deadline(),
            self.malformed.next_deadline(),
        )
        deadlines = [d for d in pending if d is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        self.malformed.flush(now)
        due: list[Transaction | Call] = [*self.transactions.timers.pop_due(now), *self.call_timers.pop_due(now)]
        for owner in due:
            try:
                owner.handle_timer(now)
            except Exception:  # as in receive: one broken call must not stop every other timer
                self.internal_errors += 1
                log.exception("timer handling failed")

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # ---- placing calls --------------------------------------------------------------------------------------

    def invite(
        self,
        target: Uri | str,
        media: MediaSession,
        now: float,
        *,
        from_uri: Uri | str,
        display_name: str | None = None,
        destination: Address | None = None,
        transport: str = "UDP",
        credentials: Credentials | None = None,
        headers: dict[str, str] | None = None,
    ) -> Call:
        """Send an INVITE with our SDP offer. ``destination`` defaults to the target URI's host and port."""
        target_uri = parse_uri(target) if isinstance(target, str) else target
        from_addr = NameAddr(parse_uri(from_uri) if isinstance(from_uri, str) else from_uri, display_name)
        peer = destination or address_for(target_uri, transport)
        local_tag = new_tag()
        request = Request(method="INVITE", uri=target_uri)
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(from_addr.with_tag(local_tag)))
        request.headers.add("To", str(NameAddr(target_uri)))
        request.headers.add("Call-ID", new_tag() + new_tag() + "@sipbridge")
        request.headers.add("CSeq", "1 INVITE")
        request.headers.add("Contact", self.contact(peer))
        add_capabilities(request, self.settings.user_agent)
        request.headers.add("Session-Expires", str(self.settings.session_expires))
        request.headers.add("Min-SE", str(self.settings.min_se))
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        request.headers.add("Content-Type", "application/sdp")
        request.body = media.create_offer().to_bytes()
        call = Call(self, inbound=False, invite=request, peer=peer, local_tag=local_tag, dialog=None)
        call.media = media
        call.credentials = credentials
        call.attach_invite_transaction(self.send_request(request, peer, now, call))
        return call

    # ---- services used by calls -----------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def remember(self, call: Call) -> None:
        self._calls[(call.call_id, call.local_tag)] = call

    def forget(self, call: Call) -> None:
        self._calls.pop((call.call_id, call.local_tag), None)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def carries_calls(self, peer: Address) -> bool:
        """Whether a call still signals through ``peer`` (a stream connection must then stay open)."""
        return any(call.peer == peer for call in self._calls.values())

    def _port_for(self, transport: str) -> int:
        """Our listening port for a transport; without a TLS listener, TLS replies come back on the connection."""
        if transport == "TLS" and self.settings.tls_port is not None:
            return self.settings.tls_port
        return self.settings.advertised_port or self.settings.port

    def _host_towards(self, peer: Address) -> str:
        return self.host_v6 if self.host_v6 and ":" in peer.host else self.host

    def contact(self, peer: Address) -> str:
        """Our Contact towards ``peer``: its transport, and our address of its IP family."""
        port = self._port_for(peer.transport)
        params = "" if peer.transport == "UDP" else f";transport={peer.transport.lower()}"
        return f"<sip:sipbridge@{format_host(self._host_towards(peer))}:{port}{params}>"

    def _via(self, peer: Address) -> str:
        port = self._port_for(peer.transport)
        return str(Via(peer.transport, self._host_towards(peer), port, {"branch": new_branch(), "rport": None}))

    def send_request(
        self, request: Request, peer: Address, now: float, owner: Call | None, *, keep_via: bool = False
    ) -> ClientTransaction:
        if not keep_via:
            request.headers.prepend("Via", self._via(peer))
        tx = self.transactions.start_client(request, peer, now)
        tx.owner = owner
        return tx

    def finish_stateless(self, request: Request, peer: Address) -> bytes:
        """Via for a request sent outside any transaction (ACK for 2xx)."""
        request.headers.prepend("Via", self._via(peer))
        return request.to_bytes()

    def send_raw(self, data: bytes, peer: Address) -> None:
        self.transactions.send(data, peer)

    # ---- transaction user callbacks -------------------------------------------------------------------------

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if isinstance(tx.owner, Call):
            tx.owner.on_response(tx, response, now)

    def on_client_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        if isinstance(tx.owner, Call):
            tx.owner.on_timeout(tx, now, status)

    def transport_error(self, peer: Address, now: float) -> None:
        """The edge could not reach ``peer`` (connection refused, name not resolved)."""
        self.transactions.transport_failed(peer, now)

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        if isinstance(tx.owner, Call):
            tx.owner.on_server_timeout(tx, now)

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
            elif (call := self._call_for(request)) is not None:
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
            call = self._call_for(request)
            if call is None:
                tx.respond(response_to(request, 481), now)
            else:
                tx.owner = call
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
        if self._is_merged(request):
            tx.respond(response_to(request, 482, to_tag=local_tag), now)
            return
        limit = self.settings.max_pending_invites
        if self.overloaded or (limit and self._pending_invites() >= limit):
            response = response_to(request, 503, to_tag=local_tag)
            response.headers.add("Retry-After", "1")
            tx.respond(response, now)  # overload: refuse early rather than let retransmissions pile up
            return
        try:
            dialog = Dialog.for_uas(request, local_tag)
            sdp = request.sdp
            offer = parse_sdp(sdp) if sdp is not None else None
        except SipParseError as exc:
            log.info("rejecting INVITE %s: %s", request.call_id, exc)
            tx.respond(response_to(request, exc.status, to_tag=local_tag), now)
            return
        refusal = refusal_of_invite(request, offer, local_tag, self.settings.min_se)
        if refusal is not None:
            tx.respond(refusal, now)
            return
        call = Call(self, inbound=True, invite=request, peer=peer, local_tag=local_tag, dialog=dialog)
        call.offer = offer
        call.attach_invite_transaction(tx)
        self.remember(call)
        self.emit(IncomingCall(call))

    def _receive_cancel(self, cancel: Request, peer: Address, now: float) -> None:
        tx = self.transactions.start_server(cancel, peer, now)
        invite_tx = self.transactions.invite_for_cancel(cancel)
        if invite_tx is None:
            tx.respond(response_to(cancel, 481, to_tag=new_tag()), now)
            return
        call = invite_tx.owner
        local_tag = call.local_tag if isinstance(call, Call) else new_tag()
        tx.respond(response_to(cancel, 200, to_tag=local_tag), now)
        if isinstance(call, Call):
            call.on_cancel(now)
        elif invite_tx.state == "proceeding":
            invite_tx.respond(response_to(invite_tx.request, 487, to_tag=local_tag), now)

    def _pending_invites(self) -> int:
        return sum(1 for call in self._calls.values() if call.inbound and call.state in ("incoming", "early"))

    def _is_merged(self, invite: Request) -> bool:
        """The same INVITE arriving again by another path (new branch) while the first is pending (§8.2.2.2)."""
        tag, seq = invite.from_.tag, invite.cseq.seq
        return any(
            call.inbound and call.call_id == invite.call_id and call.invite.from_.tag == tag
            and call.invite.cseq.seq == seq and call.invite.top_via.branch != invite.top_via.branch
            for call in self._calls.values()
        )  # fmt: skip

    def _call_for(self, request: Request) -> Call | None:
        return self._calls.get((request.call_id, request.to.tag or ""))

    def _answer_malformed(self, request: Request, status: int, source: Address) -> None:
        if self.settings.hide_inbound_port:
            return
        try:
            stamp_via(request, source)
            response = response_to(request, status if status >= 400 else 400, to_tag=new_tag())
            self.send_raw(response.to_bytes(), response_address(request, source))
        except SipParseError:
            pass  # not even enough to address an answer
