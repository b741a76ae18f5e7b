"""RFC 3261 §17 transactions (with the RFC 6026 Accepted states), sans-IO.

Each transaction keeps absolute deadlines for its timers; the owner asks for the earliest one and calls
``handle_timer(now)``. Bytes go out through the layer's outbox, and what the transaction user must know goes to
its ``TransactionUser`` callbacks. On reliable transports the retransmission timers are never armed and the
wait timers (D, I, J, K) are zero, as §17 says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import SipParseError
from .message import Request, Response, response_to
from .timers import TimerHeap
from .uri import SipUri, Uri

T1 = 0.5
T2 = 4.0
T4 = 5.0
MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True)
class Address:
    """Where bytes go or came from. For TCP/TLS, (host, port) names the connection's far end. ``server_name`` is
    the name a TLS peer's certificate must show when ``host`` is an address found by DNS (RFC 5922: the domain
    that was resolved); it does not take part in comparisons."""

    transport: str
    host: str
    port: int
    server_name: str | None = field(default=None, compare=False)

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


def address_for(uri: Uri, default_transport: str) -> Address:
    """Where a SIP URI points: its ``transport`` parameter (TLS for ``sips:``), its port or the transport's
    default. A name stays a name: the edge resolves it (A/AAAA only; ``resolver`` does RFC 3263 for trunks)."""
    if not isinstance(uri, SipUri):
        raise SipParseError(f"cannot route to {uri}")
    transport = uri.params.get("transport")
    transport = transport.upper() if transport else ("TLS" if uri.scheme == "sips" else default_transport)
    port = uri.port or (5061 if transport == "TLS" else 5060)
    return Address(transport, uri.host, port)


def new_branch() -> str:
    return MAGIC_COOKIE + os.urandom(8).hex()


class TransactionUser(Protocol):
    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None: ...

    def on_client_timeout(self, tx: ClientTransaction, now: float, status: int) -> None: ...

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None: ...


class Transaction:
    def __init__(self, layer: TransactionLayer, request: Request, peer: Address) -> None:
        self.layer = layer
        self.request = request
        self.peer = peer
        self.state = ""
        self.deadlines: dict[str, float] = {}
        self.intervals: dict[str, float] = {}
        self.owner: object | None = None  # the call (or other TU object) this transaction serves
        self.key: tuple[str, ...] = ()

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, due in sorted(self.deadlines.items(), key=lambda item: item[1]):
            if due <= now and self.deadlines.get(name) == due:
                del self.deadlines[name]
                self._fire(name, now)

    def _arm(self, name: str, now: float, delay: float) -> None:
        self.intervals[name] = delay
        self.deadlines[name] = now + delay
        self.layer.timers.schedule(self, now + delay)

    def _terminate(self) -> None:
        self.state = "terminated"
        self.deadlines.clear()
        self.layer.discard(self)

    def abandon(self) -> None:
        """Stop without sending anything more (a request we choose not to answer)."""
        self._terminate()

    def _fire(self, name: str, now: float) -> None:
        raise AssertionError(name)  # every armed timer name is handled by the subclass


class ClientTransaction(Transaction):
    """Sends a request and follows its responses: timers A, B, D (INVITE), E, F, K (non-INVITE), M."""

    def __init__(self, layer: TransactionLayer, request: Request, peer: Address, now: float) -> None:
        super().__init__(layer, request, peer)
        self.branch = request.top_via.branch or ""
        self.last_response: Response | None = None
        self._data = request.to_bytes()
        self._ack: bytes | None = None
        self.state = "calling" if self.is_invite else "trying"
        layer.send(self._data, peer)
        if not peer.reliable:
            self._arm("A" if self.is_invite else "E", now, T1)
        self._arm("B" if self.is_invite else "F", now, 64 * T1)

    def receive(self, response: Response, now: float) -> None:
        if self.is_invite:
            self._receive_invite(response, now)
        else:
            self._receive_non_invite(response, now)

    def _receive_invite(self, response: Response, now: float) -> None:
        if self.state in ("calling", "proceeding"):
            self.deadlines.pop("A", None)
            if response.status < 200:
                self.state = "proceeding"
                self.deadlines.pop("B", None)
            elif response.status < 300:
                self.state = "accepted"
                self.deadlines.clear()
                self._arm("M", now, 64 * T1)
            else:
                self.state = "completed"
                self.deadlines.clear()
                self._send_ack(response)
                self._arm("D", now, 0.0 if self.peer.reliable else 32.0)
            self._deliver(response, now)
        elif self.state == "accepted" and 200 <= response.status < 300:
            self._deliver(response, now)  # a 2xx retransmission: the TU acknowledges it again
        elif self.state == "completed" and response.status >= 300 and self._ack is not None:
            self.layer.send(self._ack, self.peer)

    def _receive_non_invite(self, response: Response, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self.deadlines.clear()
            self._arm("K", now, 0.0 if self.peer.reliable else T4)
        self._deliver(response, now)

    def _deliver(self, response: Response, now: float) -> None:
        self.last_response = response
        self.layer.tu.on_response(self, response, now)

    def fail(self, now: float, status: int) -> None:
        """Timer B/F (408), or the transport could not deliver (503, RFC 3261 §8.1.3.1)."""
        if not self.terminated and self.state in ("calling", "trying", "proceeding"):
            self._terminate()
            self.layer.tu.on_client_timeout(self, now, status)

    def _send_ack(self, response: Response) -> None:
        """ACK for a non-2xx final response belongs to the transaction (RFC 3261 §17.1.1.3)."""
        request = self.request
        ack = Request(method="ACK", uri=request.uri)
        ack.headers.add("Via", request.headers.get("Via") or "")
        for route in request.headers.get_all("Route"):
            ack.headers.add("Route", route)
        ack.headers.add("Max-Forwards", "70")
        ack.headers.add("From", request.headers.get("From") or "")
        ack.headers.add("To", response.headers.get("To") or "")
        ack.headers.add("Call-ID", request.call_id)
        ack.headers.add("CSeq", f"{request.cseq.seq} ACK")
        self._ack = ack.to_bytes()
        self.layer.send(self._ack, self.peer)

    def _fire(self, name: str, now: float) -> None:
        if name in ("A", "E"):
            self.layer.send(self._data, self.peer)
            interval = self.intervals[name] * 2
            if name == "E":
                interval = T2 if self.state == "proceeding" else min(interval, T2)
            self._arm(name, now, interval)
        elif name in ("B", "F"):
            self.fail(now, 408)
        else:  # D, K, M
            self._terminate()


class ServerTransaction(Transaction):
    """Answers a request: timers G, H, I (INVITE), J (non-INVITE), L, plus 2xx retransmission until ACK."""

    def __init__(self, layer: TransactionLayer, request: Request, peer: Address, now: float) -> None:
        super().__init__(layer, request, peer)
        self.last_response: Response | None = None
        self._data: bytes | None = None
        self.state = "proceeding" if self.is_invite else "trying"
        if self.is_invite and not layer.quiet_invites:
            self.respond(response_to(request, 100), now)

    def receive_retransmission(self) -> None:
        if self._data is not None and self.state != "confirmed":
            self.layer.send(self._data, self.peer)

    def receive_ack(self, now: float) -> bool:
        """ACK for our final response. Returns True if it acknowledged a 2xx (so the TU should see it)."""
        if self.state == "completed":
            self.state = "confirmed"
            self.deadlines.clear()
            self._arm("I", now, 0.0 if self.peer.reliable else T4)
            return False
        if self.state == "accepted":
            self.deadlines.pop("G2xx", None)
            self.deadlines.pop("L", None)
            self._arm("L", now, 0.0 if self.peer.reliable else 64 * T1)
            self.state = "acked"
            return True
        return False

    def respond(self, response: Response, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self.last_response = response
        self._data = response.to_bytes()
        self.layer.send(self._data, self.peer)
        if response.status < 200:
            self.state = "proceeding"
            return
        unreliable = not self.peer.reliable
        if self.is_invite and response.status < 300:
            self.state = "accepted"
            if unreliable:
                self._arm("G2xx", now, T1)
            self._arm("L", now, 64 * T1)
        elif self.is_invite:
            self.state = "completed"
            if unreliable:
                self._arm("G", now, T1)
            self._arm("H", now, 64 * T1)
        else:
            self.state = "completed"
            self._arm("J", now, 64 * T1 if unreliable else 0.0)

    def _fire(self, name: str, now: float) -> None:
        if name in ("G", "G2xx"):
            if self._data is not None:
                self.layer.send(self._data, self.peer)
            self._arm(name, now, min(self.intervals[name] * 2, T2))
        elif name == "H" or (name == "L" and self.state == "accepted"):
            self._terminate()
            self.layer.tu.on_server_timeout(self, now)
        else:  # I, J, L after ACK
            self._terminate()


def _server_key(request: Request) -> tuple[str, ...]:
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    sent_by = f"{via.host}:{via.port}"
    if branch.startswith(MAGIC_COOKIE):
        return (branch, sent_by, method)
    # RFC 2543 peers: match on the dialog and CSeq identifiers (RFC 3261 §17.2.3, simplified).
    return (request.call_id, request.from_.tag or "", str(request.cseq.seq), sent_by, branch, method)


class TransactionLayer:
    """Owns all transactions, matches messages to them, collects outgoing bytes."""

    def __init__(self, tu: TransactionUser, *, quiet_invites: bool = False) -> None:
        self.tu = tu
        self.quiet_invites = quiet_invites  # hide_inbound_port: no automatic 100 Trying
        self.outbox: list[tuple[bytes, Address]] = []
        self.clients: dict[tuple[str, ...], ClientTransaction] = {}
        self.timers: TimerHeap[Transaction] = TimerHeap()
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}

    def send(self, data: bytes, peer: Address) -> None:
        self.outbox.append((data, peer))

    def discard(self, tx: Transaction) -> None:
        table: dict[tuple[str, ...], Any] = self.clients if isinstance(tx, ClientTransaction) else self.servers
        if table.get(tx.key) is tx:
            del table[tx.key]

    def start_client(self, request: Request, peer: Address, now: float) -> ClientTransaction:
        key = (request.top_via.branch or "", request.method)
        tx = ClientTransaction(self, request, peer, now)
        tx.key = key
        if not tx.terminated:
            self.clients[key] = tx
        return tx

    def withdraw(self, request: Request) -> None:
        """Forget the client transaction sending ``request``: no more retransmissions, no timeout."""
        tx = self.clients.get((request.top_via.branch or "", request.method))
        if tx is not None:
            tx.abandon()

    def match_response(self, response: Response) -> ClientTransaction | None:
        via = response.top_via
        return self.clients.get((via.branch or "", response.cseq.method))

    def match_request(self, request: Request) -> ServerTransaction | None:
        return self.servers.get(_server_key(request))

    def invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        key = _server_key(cancel)
        return self.servers.get((*key[:-1], "INVITE"))

    def start_server(self, request: Request, peer: Address, now: float) -> ServerTransaction:
        key = _server_key(request)
        tx = ServerTransaction(self, request, peer, now)
        tx.key = key
        self.servers[key] = tx
        return tx

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def transport_failed(self, peer: Address, now: float) -> None:
        """Connecting or resolving ``peer`` failed: its pending client transactions fail now, not at timer B/F."""
        for tx in [tx for tx in self.clients.values() if tx.peer == peer]:
            tx.fail(now, 503)

    def handle_timer(self, now: float) -> None:
        for tx in self.timers.pop_due(now):
            tx.handle_timer(now)
