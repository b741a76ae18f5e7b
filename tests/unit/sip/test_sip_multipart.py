"""SDP found in plain and multipart bodies (SIP-I style INVITEs carry ISUP beside the SDP)."""

from __future__ import annotations

from sipbridge.sip.multipart import find_sdp

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
MULTIPART = (
    b"--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n"
    b"--unique-boundary-1\r\nContent-Type: application/ISUP;version=itu-t92+\r\n"
    b"Content-Disposition: signal;handling=optional\r\n\r\n\x01\x00\x49\x00\x00\x03\x02\x00\x07\r\n"
    b"--unique-boundary-1--\r\n"
)


def test_plain_and_multipart() -> None:
    assert find_sdp("application/sdp", SDP) == SDP
    assert find_sdp("Application/SDP; charset=utf-8", SDP) == SDP
    assert find_sdp('multipart/mixed;boundary="unique-boundary-1"', MULTIPART) == SDP
    assert find_sdp("multipart/mixed;boundary=unique-boundary-1", MULTIPART) == SDP


def test_no_sdp() -> None:
    assert find_sdp("application/isup", b"\x01") is None
    assert find_sdp("multipart/mixed", MULTIPART) is None  # no boundary
    assert find_sdp("multipart/mixed;boundary=other", MULTIPART) is None
    assert find_sdp(None, SDP) is None
    assert find_sdp("application/sdp", b"") is None
