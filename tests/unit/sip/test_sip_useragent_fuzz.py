"""Hypothesis against the whole sans-IO agent: mutated requests and responses never raise out of ``receive``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sipbridge.sip.events import IncomingCall
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

SOURCE = Address("UDP", "192.0.2.7", 5060)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
)


def request(method: str, to_tag: str = "", body: bytes = b"", extra: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} sip:bob@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK{method}{len(body)};rport\r\n"
        f"From: <sip:a@192.0.2.7>;tag=f1\r\nTo: <sip:bob@192.0.2.1>{tag}\r\nCall-ID: fuzz\r\n"
        f"CSeq: {2 if to_tag else 1} {method}\r\nContact: <sip:a@192.0.2.7>\r\nMax-Forwards: 70\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def answered_agent() -> tuple[UserAgent, str]:
    agent = UserAgent(SipSettings(), local_host="192.0.2.1")
    agent.receive_datagram(request("INVITE", body=SDP), SOURCE, 0.0)
    event = agent.next_event()
    assert isinstance(event, IncomingCall)
    agent.answer(event.handle, MediaSession("192.0.2.1", 30000), 0.0)
    return agent, agent.call_info(event.handle).local_tag


BYTES = st.sampled_from(list(b'\r\n :;,<>"@=/\\%0123456789aAtagSIPsendonly'))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["INVITE", "BYE", "UPDATE", "INFO", "NOTIFY", "ACK", "CANCEL", "OPTIONS", "REFER"]),
    st.integers(0, 600),
    st.integers(0, 30),
    st.lists(BYTES, max_size=12),
    st.floats(0, 100),
)
def test_mutated_in_dialog_requests_never_raise(
    method: str, pos: int, cut: int, insert: list[int], later: float
) -> None:
    agent, tag = answered_agent()
    body = SDP if method in ("INVITE", "UPDATE") else b"Signal=5\r\nDuration=100\r\n" if method == "INFO" else b""
    data = request(method, to_tag=tag, body=body, extra="Session-Expires: 90\r\nEvent: refer\r\n")
    agent.receive_datagram(data[:pos] + bytes(insert) + data[pos + cut :], SOURCE, later)
    agent.handle_timer(later + 64)
    agent.datagrams_to_send()
    while agent.next_event() is not None:
        pass
    assert agent.internal_errors == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 30), st.lists(BYTES, max_size=12))
def test_mutated_responses_to_our_invite_never_raise(pos: int, cut: int, insert: list[int]) -> None:
    agent = UserAgent(SipSettings(), local_host="192.0.2.1")
    agent.invite("sip:bob@192.0.2.7", MediaSession("192.0.2.1", 30000), 0.0, from_uri="sip:us@192.0.2.1")
    [(data, _)] = agent.datagrams_to_send()
    invite = data.decode()
    via = invite.split("Via: ", 1)[1].split("\r\n", 1)[0]
    frm = invite.split("From: ", 1)[1].split("\r\n", 1)[0]
    call_id = invite.split("Call-ID: ", 1)[1].split("\r\n", 1)[0]
    response = (
        f"SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\nCall-ID: {call_id}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.7>\r\nRecord-Route: <sip:p.example;lr>\r\n"
        f"Session-Expires: 90;refresher=uac\r\nContent-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP
    agent.receive_datagram(response[:pos] + bytes(insert) + response[pos + cut :], SOURCE, 0.1)
    agent.handle_timer(100.0)
    agent.datagrams_to_send()
    assert agent.internal_errors == 0
