"""SDP parsing and RFC 3264 offer/answer: codec choice, DTMF, hold directions, refresh, SRTP, 488 cases."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipbridge.sip.errors import SipParseError
from sipbridge.sip.offer_answer import Encryption, MediaSession, NegotiationError
from sipbridge.sip.sdp import parse_sdp


def offer(
    formats: str = "0 8 9 101",
    extra: str = "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n",
    direction: str = "sendrecv",
    addr: str = "IN IP4 198.51.100.7",
    proto: str = "RTP/AVP",
) -> bytes:
    text = (
        f"v=0\no=carrier 123 456 IN IP4 198.51.100.7\ns=call\nc={addr}\nt=0 0\n"
        f"m=audio 40000 {proto} {formats}\n{extra}a=ptime:20\na={direction}\n"
    )
    return text.replace("\n", "\r\n").encode()


def session(**kw: object) -> MediaSession:
    return MediaSession("203.0.113.5", 20000, **kw)  # type: ignore[arg-type]


def test_parse_and_serialise_roundtrip() -> None:
    sdp = parse_sdp(offer())
    assert sdp.media[0].formats == ["0", "8", "9", "101"]
    assert sdp.media[0].rtpmap()["101"] == ("telephone-event", 8000, 1)
    assert parse_sdp(sdp.to_bytes()).to_bytes() == sdp.to_bytes()


def test_parse_rejects_garbage() -> None:
    for bad in (b"hello", b"o=x\r\n", b"v=0\r\nc=IN IP5 x\r\n", b"v=0\r\nm=audio x RTP/AVP 0\r\n"):
        with pytest.raises(SipParseError):
            parse_sdp(bad)


def test_answer_picks_our_preference_and_keeps_dtmf() -> None:
    media = session(codecs=["PCMA", "PCMU"])
    answer = media.receive_offer(parse_sdp(offer()))
    m = answer.media[0]
    assert m.formats == ["8", "101"]
    assert m.direction == "sendrecv"
    assert media.current is not None
    assert media.current.codec.name == "PCMA" and media.current.dtmf_payload_type == 101
    assert (media.current.remote_address, media.current.remote_port) == ("198.51.100.7", 40000)
    assert answer.connection == "IN IP4 203.0.113.5"


def test_opus_dynamic_payload_type_and_g722() -> None:
    extra = "a=rtpmap:96 opus/48000/2\na=fmtp:96 useinbandfec=1\n"
    media = session(codecs=["opus", "PCMU"])
    media.receive_offer(parse_sdp(offer(formats="96 0", extra=extra)))
    assert media.current is not None and media.current.codec.name == "opus" and media.current.payload_type == 96
    g722 = session(codecs=["G722"])
    g722.receive_offer(parse_sdp(offer()))
    assert g722.current is not None and g722.current.codec.name == "G722"


def test_no_common_codec_is_488() -> None:
    with pytest.raises(NegotiationError) as info:
        session(codecs=["opus"]).receive_offer(parse_sdp(offer(formats="18", extra="a=rtpmap:18 G729/8000\n")))
    assert info.value.status == 488


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")],
)
def test_hold_directions_are_mirrored_not_cached(offered: str, answered: str) -> None:
    media = session()
    media.receive_offer(parse_sdp(offer()))
    answer = media.receive_offer(parse_sdp(offer(direction=offered)))
    assert answer.media[0].direction == answered
    unhold = media.receive_offer(parse_sdp(offer()))
    assert unhold.media[0].direction == "sendrecv"


def test_old_style_hold_with_zero_address() -> None:
    media = session()
    answer = media.receive_offer(parse_sdp(offer(addr="IN IP4 0.0.0.0")))
    assert answer.media[0].direction == "recvonly"


def test_refresh_keeps_version_and_change_bumps_it() -> None:
    media = session()
    first = media.receive_offer(parse_sdp(offer()))
    again = media.receive_offer(parse_sdp(offer()))
    assert first.origin == again.origin
    held = media.receive_offer(parse_sdp(offer(direction="sendonly")))
    assert int(held.origin.split()[2]) == int(first.origin.split()[2]) + 1


def test_remote_address_change_is_followed() -> None:
    media = session()
    media.receive_offer(parse_sdp(offer()))
    media.receive_offer(parse_sdp(offer(addr="IN IP4 198.51.100.99")))
    assert media.current is not None and media.current.remote_address == "198.51.100.99"


def test_ipv6_connection_lines() -> None:
    media = MediaSession("2001:db8::5", 20000)
    answer = media.receive_offer(parse_sdp(offer(addr="IN IP6 2001:db8::7")))
    assert answer.connection == "IN IP6 2001:db8::5"
    assert media.current is not None and media.current.remote_address == "2001:db8::7"


def test_offer_and_answer_as_uac() -> None:
    media = session(codecs=["PCMU", "PCMA"])
    sent = media.create_offer()
    m = sent.media[0]
    assert m.formats == ["0", "8", "101"] and m.proto == "RTP/AVP" and m.direction == "sendrecv"
    params = media.receive_answer(parse_sdp(offer(formats="8 101")))
    assert params.codec.name == "PCMA" and params.dtmf_payload_type == 101


def test_srtp_sdes_answer_and_require() -> None:
    crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\n"
    media = session(encryption=Encryption.ALLOW)
    answer = media.receive_offer(parse_sdp(offer(formats="0", extra=crypto, proto="RTP/SAVP")))
    line = answer.media[0].attribute("crypto")
    assert line is not None and line.startswith("1 AES_CM_128_HMAC_SHA1_80 inline:")
    assert media.current is not None and media.current.srtp is not None
    assert media.current.srtp.remote_key == "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    with pytest.raises(NegotiationError):
        session(encryption=Encryption.REQUIRE).receive_offer(parse_sdp(offer(formats="0")))
    with pytest.raises(NegotiationError):
        session().receive_offer(parse_sdp(offer(formats="0", extra=crypto, proto="RTP/SAVP")))
    secure_offer = session(encryption=Encryption.REQUIRE).create_offer()
    assert secure_offer.media[0].proto == "RTP/SAVP" and secure_offer.media[0].attribute("crypto")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300), st.integers(0, 20), st.binary(max_size=12))
def test_fuzzed_offers_only_raise_parse_errors(pos: int, cut: int, insert: bytes) -> None:
    data = offer(extra="a=rtpmap:101 telephone-event/8000\na=rtpmap:96 opus/48000/2\na=crypto:1 x inline:y\n")
    mutated = data[:pos] + insert + data[pos + cut :]
    with contextlib.suppress(SipParseError):
        session(encryption=Encryption.ALLOW).receive_offer(parse_sdp(mutated))


def test_telephone_event_clock_follows_opus() -> None:
    extra = "a=rtpmap:96 opus/48000/2\na=rtpmap:101 telephone-event/8000\na=rtpmap:102 telephone-event/48000\n"
    opus = session(codecs=["opus"])
    answer = opus.receive_offer(parse_sdp(offer(formats="96 101 102", extra=extra)))
    assert answer.media[0].formats == ["96", "102"]
    assert opus.current is not None and (opus.current.dtmf_payload_type, opus.current.dtmf_clock_rate) == (102, 48000)
    pcmu = session(codecs=["PCMU"])
    pcmu.receive_offer(parse_sdp(offer(formats="0 101 102", extra=extra)))
    assert pcmu.current is not None and (pcmu.current.dtmf_payload_type, pcmu.current.dtmf_clock_rate) == (101, 8000)
    offered = session(codecs=["opus", "PCMU"]).create_offer().media[0]
    assert offered.formats == ["111", "0", "101", "110"]
