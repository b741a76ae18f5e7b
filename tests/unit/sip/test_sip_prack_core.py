"""RFC 3262 reliable provisional responses between two sans-IO agents (both speak 100rel): RSeq, PRACK, the UAS's
retransmissions on a fake clock, the 2xx held for the PRACK of an 18x with SDP, and the 504 when no PRACK comes."""

from __future__ import annotations

from test_sip_useragent import Net, established, incoming, media, place_call

from sipbridge.sip.events import CallAcked, CallAnswered, CallEnded, CallProgress
from sipbridge.sip.message import Response, parse_message
from sipbridge.sip.reliable import parse_rack, rseq_of
from sipbridge.sip.transaction import T1


def test_reliable_180_is_pracked_and_the_call_goes_on() -> None:
    net = Net()
    established(net)
    (ringing,) = net.sent("SIP/2.0 180")
    assert b"Require: 100rel" in ringing and b"RSeq: " in ringing
    (prack,) = net.sent("PRACK")
    rseq = ringing.split(b"RSeq: ")[1].split(b"\r\n")[0]
    assert b"RAck: " + rseq + b" 1 INVITE" in prack and b"CSeq: 2 PRACK" in prack
    assert [m for m in net.sent("SIP/2.0 200") if b"PRACK" in m]
    assert net.of("a", CallAnswered) and net.of("b", CallAcked)
    net.advance(10.0)
    assert len(net.sent("SIP/2.0 180")) == 1  # PRACKed: never sent again
    bye = [m for m in net.sent("BYE")]
    assert not bye
    net.a.hangup(net.of("a", CallAnswered)[0].handle, net.now)
    net.flush()
    assert b"CSeq: 3 BYE" in net.sent("BYE")[0]  # our CSeq goes on after the PRACK's


def test_lost_prack_means_retransmissions_doubling_from_t1_and_one_progress_event() -> None:
    net = Net()
    net.drop = lambda data: data.startswith(b"PRACK")
    place_call(net)
    net.b.ring(incoming(net), net.now)
    net.flush()
    times = []
    for step in range(1, 400):
        before = len(net.sent("SIP/2.0 180"))
        net.advance(step * 0.05)
        if len(net.sent("SIP/2.0 180")) > before:
            times.append(round(net.now, 2))
        if net.now >= 5.0:
            break
    assert times[:3] == [T1, 3 * T1, 7 * T1]  # T1, then 2·T1, then 4·T1 later
    assert len(net.of("a", CallProgress)) == 1  # retransmissions are recognised by RSeq
    net.advance(40.0)  # 64·T1 without a PRACK: the INVITE is refused with a 5xx
    ended = net.of("b", CallEnded)
    assert [(e.reason, e.status) for e in ended] == [("rejected", 504)]
    assert [e.status for e in net.of("a", CallEnded)] == [504]


def test_2xx_waits_for_the_prack_of_an_18x_with_our_answer() -> None:
    net = Net()
    held = {"on": True}
    net.drop = lambda data: held["on"] and data.startswith(b"PRACK")
    place_call(net)
    inbound = incoming(net)
    net.b.progress(inbound, media("10.0.0.2"), net.now)
    net.flush()
    net.b.answer(inbound, media("10.0.0.2"), net.now)
    net.flush()
    assert not [m for m in net.sent("SIP/2.0 200") if b"INVITE" in m]  # held back
    held["on"] = False
    net.advance(1.0)  # the 183 again, PRACKed this time: the 2xx follows
    assert [m for m in net.sent("SIP/2.0 200") if b"INVITE" in m]
    assert net.of("a", CallAnswered) and net.of("b", CallAcked)


def test_prack_for_an_unknown_rseq_is_481() -> None:
    net = Net()
    place_call(net)
    inbound = incoming(net)
    net.b.ring(inbound, net.now)
    net.flush()
    info = net.b.call_info(inbound)
    raw = (
        f"PRACK sip:sipbridge@10.0.0.2:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKbadrack\r\n"
        f"From: {info.invite.headers.get('From')}\r\nTo: {info.invite.headers.get('To')};tag={info.local_tag}\r\n"
        f"Call-ID: {info.call_id}\r\nCSeq: 9 PRACK\r\nRAck: 1 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    from sipbridge.sip.transaction import Address

    net.b.receive_datagram(raw.encode(), Address("UDP", "10.0.0.1", 5060), net.now)
    net.flush()
    assert [m for m in net.sent("SIP/2.0 481") if b"PRACK" in m]


def test_numbers_past_their_range_are_not_read_as_rseq_or_rack() -> None:
    """A 5 000-digit RSeq (past Python's int() limit) or a non-ASCII digit is no RSeq: not a crash of the agent."""
    def provisional(rseq: str) -> Response:
        text = (
            "SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
            "From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:b@192.0.2.7>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
            f"Require: 100rel\r\nRSeq: {rseq}\r\nContent-Length: 0\r\n\r\n"
        )
        message = parse_message(text.encode())
        assert isinstance(message, Response)
        return message

    assert rseq_of(provisional("7")) == 7
    assert rseq_of(provisional("9" * 5000)) is None
    assert rseq_of(provisional(str(2**32))) is None
    assert parse_rack("7 1 INVITE") is not None
    assert parse_rack(f"{'9' * 5000} 1 INVITE") is None
    assert parse_rack("7 ² INVITE") is None
