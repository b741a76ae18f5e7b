"""The trace book files a call's messages in order, knows how the call went from them, and stays bounded: ended
calls beyond ``keep_calls`` or the memory budget go, oldest first; a long call keeps its first and last messages."""

from __future__ import annotations

import pytest
from inspector_sip_texts import ANSWER, CALL_ID, CHALLENGE, PHONE, SDP, basic_call, request, response

from sipbridge.config import InspectorSettings
from sipbridge.inspector.book import UNCLAIMED_LINGER, UNCLAIMED_LINGER_FINAL, TraceBook
from sipbridge.inspector.trace import CallSummary, CallTrace
from sipbridge.sip.transaction import Address


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def book_with(clock: Clock, **settings: int) -> TraceBook:
    book = TraceBook(InspectorSettings(**settings), clock)  # type: ignore[arg-type]
    book.local_address = lambda transport: ("192.0.2.1", 5060)
    return book


def play(book: TraceBook, clock: Clock, messages: list[tuple[bytes, bool]], step: float = 0.1) -> None:
    for data, outgoing in messages:
        book.record(data, outgoing, PHONE)
        clock.now += step


def test_a_calls_messages_are_kept_in_order_with_how_it_went() -> None:
    clock = Clock()
    book = book_with(clock)
    ended: list[CallTrace] = []
    book.end_listeners.append(ended.append)
    play(book, clock, basic_call()[:1])
    trace = book.claim(CALL_ID, CallSummary("SCL_1", "inbound"))
    play(book, clock, basic_call()[1:])
    book.record(request("OPTIONS", 1, call_id="ping", uri="sip:192.0.2.1"), False, PHONE)  # not a call: not kept
    assert [m.facts.label for m in trace.messages()] == [
        "INVITE", "100 Trying", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK",
    ]  # fmt: skip
    first = trace.messages()[0]
    assert (first.outgoing, first.transport, first.peer, first.local) == (False, "UDP", ("192.0.2.10", 5070), BRIDGE)
    assert trace.sip_status == 200 and trace.setup_at == pytest.approx(trace.started_at + 0.2)  # the 180
    assert trace.answered_at == pytest.approx(trace.started_at + 0.3)
    assert [t.id for t in book.active()] == [trace.id] and not ended
    book.end(trace)
    assert ended == [trace] and book.ended() == [trace] and not book.active()
    assert book.get("SCL_1") is book.get(CALL_ID) is book.get(trace.id) is trace and len(book) == 1
    book.record(response(200, "OK", "BYE", 2), True, PHONE)  # a late retransmission still joins its call
    assert trace.count == 8


BRIDGE = ("192.0.2.1", 5060)


def test_a_retry_with_credentials_joins_the_challenged_call_and_counts_as_a_new_attempt() -> None:
    clock = Clock()
    book = book_with(clock)
    outcomes: list[int] = []
    book.end_listeners.append(lambda t: outcomes.append(t.sip_status))
    play(book, clock, [(request("INVITE", 1, body=SDP), False)])
    first = book.claim(CALL_ID, CallSummary("SCL_1"))
    play(book, clock, [(response(401, "Unauthorized", "INVITE", 1, headers=CHALLENGE), True)])
    play(book, clock, [(request("ACK", 1, to_tag="bridge"), False)])
    book.end(first)
    play(book, clock, [(request("INVITE", 2, headers=ANSWER, body=SDP), False)])
    assert book.active() == [first]  # open again: the same call, now authenticated
    second = book.claim(CALL_ID, CallSummary("SCL_2"))
    play(book, clock, [(response(200, "OK", "INVITE", 2), True)])
    book.end(second)
    assert second is first and first.count == 5 and outcomes == [401, 200]
    assert book.get("SCL_2") is first


def test_invites_no_flow_takes_end_once_their_messages_stop() -> None:
    clock = Clock()
    book = book_with(clock)
    play(book, clock, [(request("INVITE", 1, call_id="refused", body=SDP), False)])
    play(book, clock, [(response(503, "Service Unavailable", "INVITE", 1, call_id="refused"), True)])
    play(book, clock, [(request("INVITE", 1, call_id="silent", body=SDP), False)])
    assert len(book.active()) == 2
    clock.now += UNCLAIMED_LINGER_FINAL
    assert [t.call_id for t in book.active()] == ["silent"]  # answered: gone after a short linger
    clock.now += UNCLAIMED_LINGER
    assert not book.active() and [t.call_id for t in book.ended()] == ["silent", "refused"]
    assert book.get("refused") is not None and book.get("refused").sip_status == 503  # type: ignore[union-attr]


def test_ended_calls_beyond_keep_calls_go_oldest_first() -> None:
    clock = Clock()
    book = book_with(clock, keep_calls=3)
    for n in range(10):
        call_id = f"call-{n}"
        play(book, clock, basic_call(call_id)[:1])
        trace = book.claim(call_id, CallSummary(f"SCL_{n}"))
        play(book, clock, basic_call(call_id)[1:])
        book.end(trace)
    assert [t.call_id for t in book.ended()] == ["call-9", "call-8", "call-7"]
    assert len(book) == 3 and book.get("SCL_0") is None and book.get("call-0") is None
    assert book.size == sum(t.size for t in book.ended())


def test_the_memory_budget_drops_ended_calls_before_keep_calls_does() -> None:
    clock = Clock()
    book = book_with(clock, keep_calls=1000, max_megabytes=1)
    big = "a=x-padding:" + "p" * 20000 + "\r\n"
    for n in range(200):
        call_id = f"big-{n}"
        play(book, clock, [(request("INVITE", 1, call_id=call_id, body=SDP + big), False)])
        book.end(book.claim(call_id, CallSummary()))
    assert book.size <= 1 << 20 and 0 < len(book.ended()) < 60


def test_a_long_call_keeps_its_first_and_last_messages() -> None:
    clock = Clock()
    book = book_with(clock, max_messages=10)
    play(book, clock, basic_call()[:4])
    trace = book.claim(CALL_ID, CallSummary())
    refreshes = [(request("UPDATE", n, to_tag="bridge"), False) for n in range(2, 40)]
    play(book, clock, refreshes + basic_call()[5:])
    kept = trace.messages()
    assert len(kept) == 10 and trace.count == 44 and trace.omitted == 34
    assert [m.index for m in kept[:5]] == [0, 1, 2, 3, 4] and [m.facts.label for m in kept[-2:]] == ["BYE", "200 OK"]
    assert trace.size == sum(len(m.data) + 400 for m in kept)


def test_too_many_unclaimed_invites_do_not_pile_up() -> None:
    clock = Clock()
    book = book_with(clock, keep_calls=10)
    for n in range(500):
        book.record(request("INVITE", 1, call_id=f"flood-{n}", body=SDP), False, PHONE)
    assert len(book.active()) <= 64 and len(book) <= 64 + 10


def test_a_call_to_our_refer_target_is_linked_as_the_transfers_second_leg() -> None:
    clock = Clock()
    book = book_with(clock)
    play(book, clock, basic_call()[:1])
    original = book.claim(CALL_ID, CallSummary())
    refer = request("REFER", 2, to_tag="phone", uri="sip:+13105550100@192.0.2.10",
                    headers="Refer-To: <sip:+15105550199@192.0.2.1>\r\n")  # fmt: skip
    play(book, clock, [*basic_call()[1:4], (refer, True)])
    new_leg = Address("UDP", "192.0.2.10", 5080)
    book.record(request("INVITE", 1, call_id="leg2", uri="sip:+15105550199@192.0.2.1", body=SDP), False, new_leg)
    second = book.get("leg2")
    assert second is not None and original.legs == [second.id] and second.legs == [original.id]
    book.record(request("INVITE", 1, call_id="unrelated", body=SDP), False, new_leg)
    assert book.get("unrelated").legs == []  # type: ignore[union-attr]


def test_a_call_taking_over_another_by_replaces_is_its_second_leg() -> None:
    clock = Clock()
    book = book_with(clock)
    play(book, clock, basic_call()[:5])
    original = book.claim(CALL_ID, CallSummary())
    replaces = f"Replaces: {CALL_ID};to-tag=bridge;from-tag=phone\r\n"
    book.record(request("INVITE", 1, call_id="taker", headers=replaces, body=SDP), False, PHONE)
    taker = book.get("taker")
    assert taker is not None and original.legs == [taker.id] and taker.legs == [original.id]


def test_our_registration_is_one_trace_of_every_register_exchange_never_a_call() -> None:
    clock = Clock()
    book = book_with(clock, keep_calls=0)
    registrar = Address("UDP", "192.0.2.50", 5060)

    def register(cseq: int, headers: str = "") -> bytes:
        text = request("REGISTER", cseq, call_id="reg-1@sipbridge", uri="sip:192.0.2.50", headers=headers)
        return text.replace(b"To: <sip:+15105550100@192.0.2.1>", b"To: <sip:bridge@carrier.example>")

    for data, outgoing in [
        (register(1), True),
        (response(401, "Unauthorized", "REGISTER", 1, call_id="reg-1@sipbridge", headers=CHALLENGE), False),
        (register(2, ANSWER), True),
        (response(200, "OK", "REGISTER", 2, call_id="reg-1@sipbridge"), False),
        (register(3, ANSWER), True),  # the refresh, much later
        (response(200, "OK", "REGISTER", 3, call_id="reg-1@sipbridge"), False),
    ]:
        book.record(data, outgoing, registrar)
        clock.now += 600
    [registration] = book.registrations()
    assert registration.count == 6 and registration.sip_status == 200 and not registration.ended
    assert registration.summary.to_number == "bridge@carrier.example"
    assert not book.active() and not book.ended()  # neither a call in progress nor an ended one
    assert b"6629fae49393a05397450978507c4ef1" not in b"".join(m.data for m in registration.messages())
