"""RFC 3263 §4.3 failover of an outbound INVITE between targets, on a fake network and a fake clock."""

from __future__ import annotations

from test_sip_useragent import B_HOST, Net, incoming, media

from sipbridge.sip.events import CallAnswered, CallEnded
from sipbridge.sip.transaction import Address

FIRST = Address("UDP", B_HOST, 5070)
SECOND = Address("UDP", B_HOST, 5071)


def dial(net: Net, *alternatives: Address) -> None:
    net.a.invite(
        f"sip:bob@{B_HOST}", media("10.0.0.1"), net.now, from_uri="sip:alice@10.0.0.1", destination=FIRST,
        alternatives=alternatives,
    )  # fmt: skip
    net.flush()


def test_a_silent_target_is_left_for_the_next_after_failover_timeout() -> None:
    net = Net()
    net.drop = lambda data: data.startswith(b"INVITE") and b"CSeq: 1 INVITE" in data  # the first target is dead
    dial(net, SECOND)
    net.advance(3.9)
    assert not net.sent("INVITE") or all(b"CSeq: 1 INVITE" in m for m in net.sent("INVITE"))
    net.advance(4.0)  # failover_timeout: the INVITE goes again, a new transaction, to the second target
    retry = [m for m in net.sent("INVITE") if b"CSeq: 2 INVITE" in m]
    assert len(retry) == 1
    first_attempts = len([m for m in net.sent("INVITE") if b"CSeq: 1 INVITE" in m])
    inbound = incoming(net)
    net.b.answer(inbound, media(B_HOST), net.now)
    net.advance(40.0)
    assert net.of("a", CallAnswered)
    # The first transaction was withdrawn: no retransmission after the failover, no timeout ending the call.
    assert len([m for m in net.sent("INVITE") if b"CSeq: 1 INVITE" in m]) == first_attempts
    assert not net.of("a", CallEnded)


def test_503_moves_on_at_once_and_the_last_target_ends_the_call() -> None:
    net = Net()
    dial(net, SECOND)
    net.b.reject(incoming(net), 503, net.now)
    net.flush()
    second = incoming(net)  # the INVITE again, as a new call on the same agent
    assert len([m for m in net.sent("INVITE") if b"CSeq: 2 INVITE" in m]) == 1
    net.b.reject(second, 503, net.now)
    net.flush()
    ended = net.of("a", CallEnded)
    assert [(e.reason, e.status) for e in ended] == [("rejected", 503)]
    assert ended[0].peer == SECOND


def test_a_target_that_answers_at_all_is_kept() -> None:
    net = Net()
    dial(net, SECOND)
    net.b.ring(incoming(net), net.now)
    net.advance(30.0)  # 180 came: no failover, however long it rings
    assert not [m for m in net.sent("INVITE") if b"CSeq: 2 INVITE" in m]


def test_an_unreachable_target_fails_over_and_a_lone_one_ends_unreachable() -> None:
    net = Net("TCP")
    net.a.invite(
        f"sip:bob@{B_HOST}", media("10.0.0.1"), net.now, from_uri="sip:alice@10.0.0.1",
        destination=Address("TCP", B_HOST, 5070), alternatives=[Address("TCP", B_HOST, 5071)],
    )  # fmt: skip
    net.a.datagrams_to_send()  # the connection is refused: nothing arrives
    net.a.transport_error(Address("TCP", B_HOST, 5070), net.now)
    retry = net.a.datagrams_to_send()
    assert [dest for _, dest in retry] == [Address("TCP", B_HOST, 5071)]
    net.a.transport_error(Address("TCP", B_HOST, 5071), net.now)
    ended = [e for e in iter(net.a.next_event, None) if isinstance(e, CallEnded)]
    assert [(e.reason, e.status) for e in ended] == [("unreachable", 503)]
