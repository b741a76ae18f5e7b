"""Between offer/answer and the RTP stream: what was negotiated reaches the stream whole (the hold direction was
once dropped on the way, so we kept sending RTP to a caller who held us, and hung up an inactive hold)."""

from __future__ import annotations

import pytest
from livekit.protocol.sip import SIPCodec, SIPMediaConfig

from sipbridge.calls.media_link import codecs_for, stream_config
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.sdp import parse_sdp


def offer(direction: str, codec_line: str = "0 101", rtpmap: str = "a=rtpmap:101 telephone-event/8000") -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP {codec_line}\r\n{rtpmap}\r\na={direction}\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("offered", "ours", "sends", "expects_media"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),  # the caller holds us: we send nothing
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),  # no media either way: no media timeout
    ],
)
def test_the_negotiated_direction_reaches_the_stream(offered: str, ours: str, sends: bool, expects_media: bool) -> None:
    session = MediaSession("192.0.2.9", 5000, codecs=["PCMU"])
    session.receive_offer(parse_sdp(offer(offered)))
    assert session.current is not None
    config = stream_config(session.current, media_timeout=15.0, media_timeout_initial=30.0)
    assert (config.direction, config.sends, config.expects_media) == (ours, sends, expects_media)


def test_the_telephone_event_clock_reaches_the_stream() -> None:
    session = MediaSession("192.0.2.9", 5000, codecs=["opus"])
    session.receive_offer(
        parse_sdp(offer("sendrecv", "111 110", "a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000"))
    )
    assert session.current is not None
    config = stream_config(session.current, media_timeout=15.0, media_timeout_initial=30.0)
    assert (config.dtmf_payload_type, config.dtmf_clock_rate) == (110, 48000)


def test_listed_codecs_are_added_or_are_the_only_ones() -> None:
    node = ("G722", "PCMU", "PCMA")  # the node's codecs setting switched Opus off
    listed = SIPMediaConfig(codecs=[SIPCodec(name="opus", rate=48000), SIPCodec(name="AMR-WB", rate=16000)])
    assert codecs_for(listed, node) == ("G722", "PCMU", "PCMA", "opus")  # AMR-WB: a codec we do not have
    only = SIPMediaConfig(only_listed_codecs=True, codecs=[SIPCodec(name="pcma"), SIPCodec(name="G722", rate=8000)])
    assert codecs_for(only, node) == ("PCMA", "G722")
    assert codecs_for(SIPMediaConfig(), node) == node
    assert codecs_for(None, node) == node


def test_only_listed_codecs_decide_the_answer() -> None:
    session = MediaSession("192.0.2.9", 5000, codecs=list(codecs_for(
        SIPMediaConfig(only_listed_codecs=True, codecs=[SIPCodec(name="PCMA")]), ("PCMU", "PCMA")
    )))  # fmt: skip
    offered = offer("sendrecv", "0 8 101", "a=rtpmap:101 telephone-event/8000")
    assert b"RTP/AVP 8 101" in session.receive_offer(parse_sdp(offered)).to_bytes()
