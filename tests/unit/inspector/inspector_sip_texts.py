"""SIP messages of a call as a phone and the bridge exchange them, for the inspector's tests."""

from __future__ import annotations

from sipbridge.sip.transaction import Address

PHONE = Address("UDP", "192.0.2.10", 5070)
BRIDGE = ("192.0.2.1", 5060)
CALL_ID = "a84b4c76e66710@192.0.2.10"


def request(
    method: str,
    cseq: int,
    *,
    call_id: str = CALL_ID,
    to_tag: str = "",
    uri: str = "sip:+15105550100@192.0.2.1",
    headers: str = "",
    body: str = "",
    content_type: str = "application/sdp",
) -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    extra = f"Content-Type: {content_type}\r\n" if body else ""
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK{method}{cseq}\r\n"
        "From: <sip:+13105550100@192.0.2.10>;tag=phone\r\n"
        f"To: <sip:+15105550100@192.0.2.1>{tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{headers}{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def response(
    status: int,
    reason: str,
    method: str,
    cseq: int,
    *,
    call_id: str = CALL_ID,
    to_tag: str = "bridge",
    headers: str = "",
) -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"SIP/2.0 {status} {reason}\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK{method}{cseq}\r\n"
        "From: <sip:+13105550100@192.0.2.10>;tag=phone\r\n"
        f"To: <sip:+15105550100@192.0.2.1>{tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{headers}Content-Length: 0\r\n\r\n"
    ).encode()


SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
CHALLENGE = 'WWW-Authenticate: Digest realm="sipbridge", nonce="b5f1e2c3d4a5968778695a4b3c2d1e0f", qop="auth"\r\n'
ANSWER = (
    'Authorization: Digest username="trunkuser", realm="sipbridge", nonce="b5f1e2c3d4a5968778695a4b3c2d1e0f", '
    'uri="sip:+15105550100@192.0.2.1", response="6629fae49393a05397450978507c4ef1", qop=auth, nc=00000001, '
    'cnonce="0a4f113b"\r\n'
)


def basic_call(call_id: str = CALL_ID) -> list[tuple[bytes, bool]]:
    """(message, sent by the bridge) for INVITE, 100, 180, 200, ACK, BYE, 200."""
    return [
        (request("INVITE", 1, call_id=call_id, body=SDP), False),
        (response(100, "Trying", "INVITE", 1, call_id=call_id, to_tag=""), True),
        (response(180, "Ringing", "INVITE", 1, call_id=call_id), True),
        (response(200, "OK", "INVITE", 1, call_id=call_id), True),
        (request("ACK", 1, call_id=call_id, to_tag="bridge"), False),
        (request("BYE", 2, call_id=call_id, to_tag="bridge"), False),
        (response(200, "OK", "BYE", 2, call_id=call_id), True),
    ]
