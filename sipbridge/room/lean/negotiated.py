"""What an offer/answer round settled for the participant's RTP, read from the two SDPs (pure).

Out: the m-section of our published track, with our SSRC, the Opus payload type the server took and the ids it gave
the header extensions we fill in (`sdes:mid`, which lets a bundled receiver find the m-section; the audio level,
which livekit-server's speaker detection reads). In: one route per m-section the server sends a track on, by its
SSRC. On `/rtc/v1` the answer's `mid_to_track_id` says which track each m-section carries; the SDP's msid says
the same for servers that do not fill it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiortc.sdp import MediaDescription, SessionDescription

MID_EXTENSION = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_EXTENSION = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class NegotiationError(Exception):
    """The answer does not carry what the participant needs (e.g. no Opus for our track)."""


@dataclass(frozen=True)
class SendRoute:
    mid: str
    ssrc: int
    payload_type: int
    mid_extension: int | None
    """The id of the `sdes:mid` header extension, None when not negotiated."""
    audio_level_extension: int | None


@dataclass(frozen=True)
class ReceiveRoute:
    mid: str
    ssrc: int
    track_sid: str
    payload_type: int


@dataclass(frozen=True)
class Negotiated:
    send: SendRoute
    receive: tuple[ReceiveRoute, ...]


def read_negotiated(
    local_sdp: str, remote_sdp: str, our_track_id: str, mid_to_track_id: Mapping[str, str]
) -> Negotiated:
    """The routes of an applied offer/answer; `our_track_id` is the msid track id of our published track."""
    local = {media.rtp.muxId: media for media in SessionDescription.parse(local_sdp).media}
    remote = [media for media in SessionDescription.parse(remote_sdp).media if media.kind == "audio"]
    send: SendRoute | None = None
    receive: list[ReceiveRoute] = []
    for media in remote:
        mid = media.rtp.muxId
        ours = local.get(mid)
        if ours is not None and ours.msid is not None and ours.msid.split()[-1] == our_track_id:
            send = SendRoute(mid, ours.ssrc[0].ssrc, _opus_payload_type(media), *_extensions(media))
        elif media.direction in ("sendonly", "sendrecv") and media.ssrc:
            track_sid = mid_to_track_id.get(mid) or _msid_track(media)
            if track_sid:
                receive.append(ReceiveRoute(mid, media.ssrc[0].ssrc, track_sid, _opus_payload_type(media)))
    if send is None:
        raise NegotiationError(f"the answer has no m-section for our track {our_track_id}")
    return Negotiated(send, tuple(receive))


def _opus_payload_type(media: MediaDescription) -> int:
    for codec in media.rtp.codecs:
        if codec.mimeType.lower() == "audio/opus" and codec.payloadType is not None:
            return codec.payloadType
    raise NegotiationError(f"m-section {media.rtp.muxId} has no Opus")


def _extensions(media: MediaDescription) -> tuple[int | None, int | None]:
    ids = {extension.uri: extension.id for extension in media.rtp.headerExtensions}
    return ids.get(MID_EXTENSION), ids.get(AUDIO_LEVEL_EXTENSION)


def _msid_track(media: MediaDescription) -> str:
    msid = media.msid or next((ssrc.msid for ssrc in media.ssrc if ssrc.msid), None)
    return msid.split()[-1] if msid else ""
