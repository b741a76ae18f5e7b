"""lk.sip.GetRemoteHeaders' filtering, as the Go service filters: transport and session headers never, then the
agent's include / exclude lists (case-insensitive)."""

from __future__ import annotations

from sipbridge.calls.participant_rpc import remote_headers

INVITE_HEADERS = [
    ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"),
    ("From", "<sip:+13105550100@carrier>;tag=1"),
    ("To", "<sip:+15105550100@bridge>"),
    ("Call-ID", "abc@carrier"),
    ("CSeq", "1 INVITE"),
    ("Max-Forwards", "70"),
    ("Session-Expires", "1800"),
    ("Content-Type", "application/sdp"),
    ("X-Customer-Id", "42"),
    ("X-Campaign", "spring"),
]


def test_transport_and_session_headers_are_left_out() -> None:
    headers = remote_headers(INVITE_HEADERS)
    assert headers == {
        "From": "<sip:+13105550100@carrier>;tag=1",
        "To": "<sip:+15105550100@bridge>",
        "Call-ID": "abc@carrier",
        "X-Customer-Id": "42",
        "X-Campaign": "spring",
    }


def test_include_and_exclude_ignore_case() -> None:
    assert remote_headers(INVITE_HEADERS, include=["x-customer-id", "VIA"]) == {"X-Customer-Id": "42"}
    assert set(remote_headers(INVITE_HEADERS, exclude=["from", "TO", "call-id"])) == {"X-Customer-Id", "X-Campaign"}
