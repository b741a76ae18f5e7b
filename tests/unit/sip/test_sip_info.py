"""INFO DTMF bodies (application/dtmf-relay, application/dtmf) and REFER NOTIFY sipfrag status lines."""

from __future__ import annotations

from sipbridge.sip.info import DTMF, DTMF_RELAY, parse_dtmf_info, parse_sipfrag_status


def test_dtmf_info_bodies_and_sipfrag() -> None:
    assert parse_dtmf_info(DTMF_RELAY, b"Signal=#\r\nDuration=120\r\n") == ("#", 120)
    assert parse_dtmf_info(DTMF_RELAY, b"Signal= 11\r\n") == ("#", 250)  # RFC 4733 event number
    assert parse_dtmf_info(DTMF, b"7") == ("7", 250)
    assert parse_dtmf_info(DTMF, b"x") is None
    assert parse_dtmf_info("text/plain", b"5") is None
    assert parse_sipfrag_status(b"SIP/2.0 180 Ringing\r\n") == 180
    assert parse_sipfrag_status(b"garbage") is None
