"""Between offer/answer and the RTP session: LiveKit's encryption setting in, the negotiated stream config out."""

from __future__ import annotations

from collections.abc import Sequence

from livekit.protocol.sip import SIPMediaConfig, SIPMediaEncryption

from sipbridge.media.srtp import SrtpKeys
from sipbridge.media.stream import StreamConfig
from sipbridge.sip import Encryption, MediaParams
from sipbridge.sip.sdp import SessionDescription


def sdp_encryption(media_encryption: int) -> Encryption:
    """A trunk's or rule's ``SIPMediaEncryption`` as the SDP layer's setting (unknown values: disabled)."""
    if media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE:
        return Encryption.REQUIRE
    if media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW:
        return Encryption.ALLOW
    return Encryption.DISABLE


_SDP_RATES = {"PCMU": (8000,), "PCMA": (8000,), "G722": (8000, 16000), "opus": (48000,)}
"""The rates a ``SIPCodec`` may name for each codec we have (G.722's SDP rate is 8000, its real one 16000)."""


def codecs_for(media: SIPMediaConfig | None, enabled: Sequence[str]) -> tuple[str, ...]:
    """What a call offers and accepts, in preference order: the node's ``codecs`` setting, with the codecs a
    trunk, rule or request lists in ``media.codecs`` switched on as well, or only those with
    ``only_listed_codecs`` (as livekit/sip reads them). Codecs this bridge does not have are passed over."""
    if media is None or not media.codecs:
        return tuple(enabled)
    listed: list[str] = []
    for codec in media.codecs:
        name = next((known for known in _SDP_RATES if known.lower() == codec.name.lower()), None)
        if name is not None and (not codec.rate or codec.rate in _SDP_RATES[name]) and name not in listed:
            listed.append(name)
    if media.only_listed_codecs:
        return tuple(listed)
    return (*enabled, *(name for name in listed if name not in enabled))


def stream_config(
    params: MediaParams, media_timeout: float, media_timeout_initial: float, *, dtmf_audio: bool = False
) -> StreamConfig:
    """The RTP stream's configuration from what offer/answer settled (``dtmf_audio``: config's ``audio_dtmf``)."""
    srtp = (
        SrtpKeys(params.srtp.suite, params.srtp.local_key, params.srtp.remote_key) if params.srtp is not None else None
    )
    return StreamConfig(
        codec=params.codec.name,
        payload_type=params.payload_type,
        dtmf_payload_type=params.dtmf_payload_type,
        dtmf_clock_rate=params.dtmf_clock_rate,
        ptime_ms=params.ptime,
        srtp=srtp,
        media_timeout=media_timeout,
        media_timeout_initial=media_timeout_initial,
        dtmf_audio=dtmf_audio,
        direction=params.direction,
    )


_STATIC_NAMES = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "13": "CN", "18": "G729"}


def offered_codecs(sdp: SessionDescription) -> list[str]:
    """The audio codecs an SDP lists (its rtpmap names, or the static payload types' names), for the metrics."""
    names: list[str] = []
    for media in sdp.media:
        if media.kind != "audio":
            continue
        rtpmap = media.rtpmap()
        for fmt in media.formats:
            mapped = rtpmap.get(fmt)
            name = mapped[0] if mapped is not None else _STATIC_NAMES.get(fmt, fmt)
            names.append(name.upper() if name.lower() != "opus" else "opus")
    return names
