"""Reading what an offer/answer round settled for the lean transport's RTP, from SDPs as livekit-server 1.13 and
aiortc write them."""

from __future__ import annotations

import pytest

from sipbridge.room.lean.negotiated import NegotiationError, ReceiveRoute, SendRoute, read_negotiated

OUR_TRACK = "9f0c-our-track"

OFFER = f"""v=0
o=- 1 1 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8
c=IN IP4 0.0.0.0
a=sendonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:0
a=msid:a-stream {OUR_TRACK}
a=rtcp-mux
a=ssrc:1111 cname:ours
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=mid:1
a=sctp-port:5000
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8
c=IN IP4 0.0.0.0
a=recvonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:2
a=msid:b-stream b-track
a=rtcp-mux
a=ssrc:2222 cname:ours
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
"""

ANSWER = """v=0
o=- 3013126969680171346 1796309098 IN IP4 0.0.0.0
s=-
t=0 0
a=msid-semantic:WMS *
a=group:BUNDLE 0 1 2
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8
c=IN IP4 0.0.0.0
a=setup:active
a=mid:0
a=rtcp-mux
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=recvonly
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=setup:active
a=mid:1
a=sendrecv
a=sctp-port:5000
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8
c=IN IP4 0.0.0.0
a=setup:active
a=mid:2
a=rtcp-mux
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=ssrc:3368053213 cname:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK
a=ssrc:3368053213 msid:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK TR_AMpkuUv2fuphMK
a=msid:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK TR_AMpkuUv2fuphMK
a=sendonly
"""


def test_our_route_out_and_the_remote_tracks_route_in() -> None:
    negotiated = read_negotiated(OFFER, ANSWER, OUR_TRACK, {"2": "TR_AMpkuUv2fuphMK"})
    assert negotiated.send == SendRoute(mid="0", ssrc=1111, payload_type=96, mid_extension=1, audio_level_extension=2)
    assert negotiated.receive == (
        ReceiveRoute(mid="2", ssrc=3368053213, track_sid="TR_AMpkuUv2fuphMK", payload_type=96),
    )


def test_the_track_comes_from_the_msid_when_the_server_sends_no_mapping() -> None:
    (route,) = read_negotiated(OFFER, ANSWER, OUR_TRACK, {}).receive
    assert route.track_sid == "TR_AMpkuUv2fuphMK"


def test_an_offered_section_the_server_sends_nothing_on_is_no_route() -> None:
    idle = ANSWER.replace("a=ssrc:3368053213 cname:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK\n", "")
    idle = idle.replace("a=ssrc:3368053213 msid:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK TR_AMpkuUv2fuphMK\n", "")
    idle = idle.replace("a=msid:PA_kk47jZrtYZLd|TR_AMpkuUv2fuphMK TR_AMpkuUv2fuphMK\na=sendonly", "a=inactive")
    assert read_negotiated(OFFER, idle, OUR_TRACK, {}).receive == ()


def test_extensions_the_server_did_not_take_are_left_out() -> None:
    plain = ANSWER.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\na=extmap:2", "a=extmap:2", 1)
    assert read_negotiated(OFFER, plain, OUR_TRACK, {}).send.mid_extension is None


def test_an_answer_without_our_track_or_without_opus_is_an_error() -> None:
    with pytest.raises(NegotiationError):
        read_negotiated(OFFER, ANSWER, "another-track", {})
    with pytest.raises(NegotiationError):
        read_negotiated(OFFER, ANSWER.replace("opus", "G722"), OUR_TRACK, {})
