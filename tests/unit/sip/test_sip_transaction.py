"""Every RFC 3261 §17 timer driven with a fake clock: retransmission schedules, timeouts and absorbing states."""

from __future__ import annotations

import itertools

import pytest

from sipbridge.sip.message import Request, Response, parse_message, response_to
from sipbridge.sip.transaction import (
    T1,
    T2,
    T4,
    Address,
    ClientTransaction,
    ServerTransaction,
    TransactionLayer,
    new_branch,
)

UDP = Address("UDP", "192.0.2.9", 5060)
TCP = Address("TCP", "192.0.2.9", 5060)


class Recorder:
    def __init__(self) -> None:
        self.responses: list[int] = []
        self.client_timeouts = 0
        self.failures: list[int] = []
        self.server_timeouts = 0

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        self.responses.append(response.status)

    def on_client_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        self.client_timeouts += 1
        self.failures.append(status)

    def on_server_timeout(self, tx: ServerTransaction, now: float) -> None:
        self.server_timeouts += 1


def request(method: str = "INVITE", branch: str | None = None) -> Request:
    text = (
        f"{method} sip:bob@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch or new_branch()}\r\n"
        "From: <sip:a@192.0.2.1>;tag=abc\r\nTo: <sip:bob@192.0.2.9>\r\nCall-ID: call-1\r\n"
        f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    parsed = parse_message(text.encode())
    assert isinstance(parsed, Request)
    return parsed


def run(layer: TransactionLayer, until: float, step: float = 0.01) -> list[float]:
    """Advance a fake clock, returning the times at which something was sent."""
    sent: list[float] = []
    now = 0.0
    while now <= until + 1e-9:
        layer.handle_timer(now)
        sent.extend(now for _ in layer.outbox)
        layer.outbox.clear()
        deadline = layer.next_deadline()
        if deadline is None:
            break
        now = max(now + 1e-6, deadline)
    return [round(t, 6) for t in sent]


def sent_times(layer: TransactionLayer, until: float) -> list[float]:
    layer.outbox.clear()
    return run(layer, until)


def test_timer_a_doubles_and_timer_b_times_out() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    layer.start_client(request(), UDP, now=0.0)
    layer.outbox.clear()
    times = run(layer, 40.0)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # T1 doubling, no T2 cap for INVITE
    assert tu.client_timeouts == 1  # timer B at 64*T1 = 32 s
    assert not layer.clients


def test_timer_e_caps_at_t2_and_timer_f() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    layer.start_client(request("OPTIONS"), UDP, now=0.0)
    times = sent_times(layer, 40.0)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5,1,2,4 then capped at T2=4
    assert all(b - a == pytest.approx(T2) for a, b in itertools.pairwise(times[3:]))
    assert tu.client_timeouts == 1 and not layer.clients


def test_reliable_transport_arms_no_retransmission() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    layer.start_client(request(), TCP, now=0.0)
    assert sent_times(layer, 40.0) == []
    assert tu.client_timeouts == 1


def test_invite_provisional_stops_a_and_b_then_non2xx_acked_timer_d() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request()
    tx = layer.start_client(req, UDP, now=0.0)
    layer.outbox.clear()
    tx.receive(response_to(req, 180, to_tag="t"), now=0.1)
    assert tx.state == "proceeding" and not tx.deadlines
    tx.receive(response_to(req, 486, to_tag="t"), now=60.0)
    assert tx.state == "completed" and tu.responses == [180, 486]
    ack = parse_message(layer.outbox.pop()[0])
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.to.tag == "t"
    assert ack.top_via.branch == req.top_via.branch  # same transaction
    tx.receive(response_to(req, 486, to_tag="t"), now=61.0)  # retransmitted final: ACK again, not to TU
    assert len(layer.outbox) == 1 and tu.responses == [180, 486]
    layer.handle_timer(60.0 + 31.9)
    assert tx.state == "completed"
    layer.handle_timer(60.0 + 32.0)  # timer D
    assert tx.terminated and not layer.clients


def test_invite_2xx_accepted_state_timer_m_passes_retransmissions() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request()
    tx = layer.start_client(req, UDP, now=0.0)
    tx.receive(response_to(req, 200, to_tag="t"), now=0.2)
    tx.receive(response_to(req, 200, to_tag="t"), now=0.7)
    assert tu.responses == [200, 200] and tx.state == "accepted"
    layer.handle_timer(0.2 + 64 * T1)
    assert tx.terminated


def test_non_invite_client_timer_k() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request("BYE")
    tx = layer.start_client(req, UDP, now=0.0)
    tx.receive(response_to(req, 100), now=0.1)
    layer.outbox.clear()
    for now in (0.5, 1.5, 4.5, 8.5):
        layer.handle_timer(now)
    assert len(layer.outbox) == 3  # in Proceeding, E fires every T2
    tx.receive(response_to(req, 200, to_tag="x"), now=9.0)
    tx.receive(response_to(req, 200, to_tag="x"), now=9.5)
    assert tu.responses == [100, 200]
    layer.handle_timer(9.0 + T4 - 0.01)
    assert tx.state == "completed"
    layer.handle_timer(9.0 + T4)
    assert tx.terminated


def test_invite_server_100_trying_retransmission_and_timer_g_h() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request()
    tx = layer.start_server(req, UDP, now=0.0)
    trying = parse_message(layer.outbox.pop()[0])
    assert isinstance(trying, Response) and trying.status == 100
    assert layer.match_request(request(branch=req.top_via.branch)) is tx  # retransmitted INVITE matches
    tx.receive_retransmission()
    assert parse_message(layer.outbox.pop()[0]).status == 100  # type: ignore[union-attr]
    tx.respond(response_to(req, 486, to_tag="s"), now=1.0)
    layer.outbox.clear()
    now = 1.0
    times: list[float] = []
    while tx.next_deadline() is not None:
        now = tx.next_deadline() or now
        layer.handle_timer(now)
        times.extend(round(now - 1.0, 6) for _ in layer.outbox)
        layer.outbox.clear()
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # G: T1 doubling capped at T2
    assert now == pytest.approx(1.0 + 64 * T1)  # H
    assert tu.server_timeouts == 1


def test_invite_server_ack_stops_g_and_timer_i() -> None:
    layer = TransactionLayer(Recorder())
    req = request()
    tx = layer.start_server(req, UDP, now=0.0)
    tx.respond(response_to(req, 603, to_tag="s"), now=0.0)
    ack = request("ACK", branch=req.top_via.branch)
    assert layer.match_request(ack) is tx
    assert tx.receive_ack(now=0.3) is False
    assert tx.state == "confirmed" and set(tx.deadlines) == {"I"}
    layer.handle_timer(0.3 + T4)
    assert tx.terminated and not layer.servers


def test_invite_server_2xx_retransmitted_until_ack() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request()
    tx = layer.start_server(req, UDP, now=0.0)
    tx.respond(response_to(req, 200, to_tag="s"), now=0.0)
    layer.outbox.clear()
    for t in (0.5, 1.5, 3.5):
        layer.handle_timer(t)
    assert len(layer.outbox) == 3
    assert tx.receive_ack(now=4.0) is True
    layer.outbox.clear()
    layer.handle_timer(7.5)
    assert layer.outbox == []
    layer.handle_timer(4.0 + 64 * T1)
    assert tx.terminated and tu.server_timeouts == 0


def test_invite_server_2xx_without_ack_times_out() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    req = request()
    tx = layer.start_server(req, UDP, now=0.0)
    tx.respond(response_to(req, 200, to_tag="s"), now=0.0)
    run(layer, 40.0)
    assert tx.terminated and tu.server_timeouts == 1


def test_non_invite_server_timer_j_absorbs_retransmissions() -> None:
    layer = TransactionLayer(Recorder())
    req = request("OPTIONS")
    tx = layer.start_server(req, UDP, now=0.0)
    assert layer.outbox == []  # no automatic 100 for non-INVITE
    tx.respond(response_to(req, 200, to_tag="s"), now=0.0)
    layer.outbox.clear()
    assert layer.match_request(request("OPTIONS", branch=req.top_via.branch)) is tx
    tx.receive_retransmission()
    assert len(layer.outbox) == 1
    layer.handle_timer(64 * T1 - 0.01)
    assert not tx.terminated
    layer.handle_timer(64 * T1)
    assert tx.terminated


def test_reliable_server_timers_are_zero() -> None:
    layer = TransactionLayer(Recorder())
    req = request("OPTIONS")
    tx = layer.start_server(req, TCP, now=0.0)
    tx.respond(response_to(req, 200), now=0.0)
    layer.handle_timer(0.0)
    assert tx.terminated


def test_cancel_matches_its_invite() -> None:
    layer = TransactionLayer(Recorder())
    req = request()
    tx = layer.start_server(req, UDP, now=0.0)
    cancel = request("CANCEL", branch=req.top_via.branch)
    assert layer.match_request(cancel) is None
    assert layer.invite_for_cancel(cancel) is tx


def test_transport_failure_fails_pending_client_transactions_at_once() -> None:
    tu = Recorder()
    layer = TransactionLayer(tu)
    tx = layer.start_client(request(), TCP, now=0.0)
    other = layer.start_client(request("OPTIONS"), UDP, now=0.0)
    layer.transport_failed(TCP, now=0.1)
    assert tx.terminated and tu.failures == [503] and not other.terminated
    run(layer, 40.0)
    assert tu.failures == [503, 408]  # the UDP one still ends by timer F
