"""What the inspector keeps of a message: no digest answer or nonce to replay, no trunk password, no PIN digit
typed in SIP INFO; and the message still parses (lengths kept), so a saved pcap still reads."""

from __future__ import annotations

from inspector_sip_texts import ANSWER, CHALLENGE, SDP, request, response

from sipbridge.inspector.masking import mask_message
from sipbridge.inspector.sipscan import scan
from sipbridge.sip.message import Request, parse_message


def test_digest_answers_and_nonces_are_masked_in_requests_and_challenges() -> None:
    invite = mask_message(request("INVITE", 2, headers=ANSWER, body=SDP))
    challenge = mask_message(response(401, "Unauthorized", "INVITE", 1, headers=CHALLENGE))
    for secret in (b"6629fae49393a05397450978507c4ef1", b"b5f1e2c3d4a5968778695a4b3c2d1e0f", b"0a4f113b"):
        assert secret not in invite and secret not in challenge
    assert b'username="trunkuser"' in invite and b'response="***"' in invite and b'nonce="***"' in challenge
    parsed = parse_message(invite)
    assert isinstance(parsed, Request) and parsed.body == SDP.encode()  # the body and its length untouched


def test_a_known_password_is_masked_wherever_it_appears_keeping_lengths() -> None:
    body = "v=0\r\ns=hunter2-leaked\r\n"
    masked = mask_message(request("INFO", 3, to_tag="b", body=body, content_type="text/plain"), [b"hunter2"])
    assert b"hunter2" not in masked and b"*******-leaked" in masked
    assert parse_message(masked).body == b"v=0\r\ns=*******-leaked\r\n"


def test_dtmf_in_sip_info_is_masked_only_while_a_pin_is_entered() -> None:
    relay = request("INFO", 3, to_tag="b", body="Signal=7\r\nDuration=160\r\n", content_type="application/dtmf-relay")
    bare = request("INFO", 4, to_tag="b", body="7", content_type="application/dtmf")
    assert b"Signal=7" in mask_message(relay)  # after the PIN, digits are the agent's business
    masked = mask_message(relay, pin_entry=True)
    assert b"Signal=x" in masked and b"Duration=160" in masked
    assert parse_message(mask_message(bare, pin_entry=True)).body == b"x"
    invite = request("INVITE", 1, body=SDP)
    assert mask_message(invite, pin_entry=True) == invite  # only DTMF bodies of INFO requests


def test_the_scan_reads_what_a_trace_is_filed_by() -> None:
    facts = scan(request("INVITE", 1, body=SDP))
    assert facts is not None and facts.starts_dialog and facts.label == "INVITE" and facts.cseq == 1
    ok = scan(response(200, "OK", "INVITE", 1))
    assert ok is not None and ok.label == "200 OK" and ok.method == "INVITE" and not ok.starts_dialog
    compact = scan(b"BYE sip:a@b SIP/2.0\r\ni: x1\r\nt: <sip:a@b>;tag=9\r\nCSeq: 7 BYE\r\n\r\n")
    assert compact is not None and compact.call_id == "x1" and compact.to_tag
    assert scan(b"\x00\x01 not sip") is None and scan(b"HTTP/1.1 200 OK\r\n\r\n") is None
