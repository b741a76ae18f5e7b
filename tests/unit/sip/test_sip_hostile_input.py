"""Classes of hostile input a fuzzer found behind the (sound) parser, each at the wire of the sans-IO user agent:
the answer is a 4xx (or the value is ignored), never a 500, a traceback or a call that hangs."""

from __future__ import annotations

import pytest
from test_sip_useragent import A_HOST, B_HOST, _raw_invite, media

from sipbridge.sip.events import CallAcked, CallEnded, DtmfReceived, IncomingCall
from sipbridge.sip.message import Response, parse_message
from sipbridge.sip.session_timer import MAX_SESSION_INTERVAL
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

SOURCE = Address("UDP", A_HOST, 5060)
HUGE = "9" * 5000  # past the 4 300 digits int() accepts


def sdp(media_line: str = "m=audio 4000 RTP/AVP 0 101", *attributes: str) -> str:
    lines = ["v=0", f"o=- 1 1 IN IP4 {A_HOST}", "s=-", f"c=IN IP4 {A_HOST}", "t=0 0", media_line, *attributes]
    return "\r\n".join(lines) + "\r\n"


def agent() -> UserAgent:
    return UserAgent(SipSettings(port=5070), local_host=B_HOST)


def statuses(ua: UserAgent) -> list[int]:
    """The final statuses the agent sent (read off the status line: an echoed bad header need not parse)."""
    sent = [int(d[8:11]) for d, _ in ua.datagrams_to_send() if d.startswith(b"SIP/2.0 ")]
    return [status for status in sent if status >= 200]


def final_response(ua: UserAgent) -> Response:
    [response] = [
        m for d, _ in ua.datagrams_to_send() if isinstance(m := parse_message(d), Response) and m.status >= 200
    ]
    return response


@pytest.mark.parametrize(
    "body",
    [
        sdp(f"m=audio {HUGE} RTP/AVP 0"),
        sdp("m=audio 4000 RTP/AVP 0", f"a=rtpmap:0 PCMU/{HUGE}"),
        sdp("m=audio 4000 RTP/AVP 0", f"a=rtpmap:0 PCMU/8000/{HUGE}"),
        sdp(f"m=audio 4000 RTP/AVP {HUGE} 0"),
        sdp("m=audio 4000 RTP/AVP 0", f"a=ptime:{HUGE}"),
    ],
)
def test_numbers_past_the_int_limit_in_sdp_are_refused_or_ignored(body: str) -> None:
    ua = agent()
    ua.receive_datagram(_raw_invite(body), SOURCE, 0.0)
    event = ua.next_event()
    if isinstance(event, IncomingCall):  # the bad value was ignored: the call can be answered normally
        ua.answer(event.handle, media(B_HOST), 0.0)
        assert statuses(ua)[-1] in (200, 488)
    else:
        assert statuses(ua) in ([400], [488])
    assert ua.internal_errors == 0


@pytest.mark.parametrize("header", [f"Session-Expires: {HUGE}", f"CSeq: {HUGE} INVITE", f"Max-Forwards: {HUGE}"])
def test_numbers_past_the_int_limit_in_headers_get_400(header: str) -> None:
    ua = agent()
    raw = _raw_invite(extra=header + "\r\n")
    if header.startswith("CSeq"):
        raw = raw.replace(b"CSeq: 1 INVITE\r\n", b"")
    if header.startswith("Max-Forwards"):
        raw = raw.replace(b"Max-Forwards: 70\r\n", b"")
    ua.receive_datagram(raw, SOURCE, 0.0)
    event = ua.next_event()
    if header.startswith("Session-Expires"):  # too long a session is shortened, not refused (RFC 4028 §9)
        assert isinstance(event, IncomingCall)
    else:
        assert event is None and statuses(ua) == [400]
    assert ua.internal_errors == 0


def test_a_400_digit_session_expires_is_clamped_and_the_call_is_acked() -> None:
    """It used to be echoed; arming the timer on ACK overflowed a float and the call waited for the ACK forever."""
    ua = agent()
    ua.receive_datagram(_raw_invite(sdp(), extra=f"Session-Expires: {'4' * 400}\r\n"), SOURCE, 0.0)
    event = ua.next_event()
    assert isinstance(event, IncomingCall)
    ua.answer(event.handle, media(B_HOST), 0.0)
    ok = final_response(ua)
    assert (ok.headers.get("Session-Expires") or "").startswith(f"{MAX_SESSION_INTERVAL};")
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKack\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    ua.receive_datagram(ack, SOURCE, 0.1)
    assert isinstance(ua.next_event(), CallAcked)
    assert ua.internal_errors == 0


@pytest.mark.parametrize("signal", [HUGE, "é", "-1", "99"])
def test_info_dtmf_with_a_bad_signal_is_ignored(signal: str) -> None:
    ua = agent()
    ua.receive_datagram(_raw_invite(sdp()), SOURCE, 0.0)
    event = ua.next_event()
    assert isinstance(event, IncomingCall)
    ua.answer(event.handle, media(B_HOST), 0.0)
    ok = final_response(ua)
    body = f"Signal={signal}\r\nDuration={HUGE}\r\n"
    info = (
        f"INFO sip:sipbridge@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKinfo\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 2 INFO\r\n"
        f"Content-Type: application/dtmf-relay\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    ua.receive_datagram(info, SOURCE, 0.1)
    assert statuses(ua) == [200]
    assert not any(isinstance(e, DtmfReceived) for e in iter(ua.next_event, None))
    assert ua.internal_errors == 0


@pytest.mark.parametrize("contact", ["<tel:+15105550100>", "<mailto:a@example.com>"])
def test_a_caller_whose_contact_is_not_a_sip_uri_is_refused(contact: str) -> None:
    """Such a call used to be answered, and then could never be hung up: the call stayed forever."""
    ua = agent()
    raw = _raw_invite(sdp()).replace(f"Contact: <sip:carrier@{A_HOST}:5060>".encode(), f"Contact: {contact}".encode())
    ua.receive_datagram(raw, SOURCE, 0.0)
    assert ua.next_event() is None
    assert statuses(ua) == [400]
    assert ua.internal_errors == 0


def test_received_is_ours_to_set_responses_go_to_the_source() -> None:
    """A sender naming received=<victim> in a Via whose host is its own address used to get every response, and
    each retransmission of an INVITE's final answer, sent to the victim."""
    ua = agent()
    raw = _raw_invite(sdp()).replace(b";rport\r\n", b";received=198.51.100.99\r\n")
    ua.receive_datagram(raw, SOURCE, 0.0)
    event = ua.next_event()
    assert isinstance(event, IncomingCall)
    ua.reject(event.handle, 486, 0.0)
    sent = ua.datagrams_to_send()
    assert sent and all(dest == Address("UDP", A_HOST, 5060) for _, dest in sent)
    assert all(b"198.51.100.99" not in data for data, _ in sent)
    ua.handle_timer(1.0)  # retransmissions too
    assert all(dest.host == A_HOST for _, dest in ua.datagrams_to_send())
    assert isinstance(ua.next_event(), CallEnded)
