"""Between offer/answer and the RTP session: LiveKit's encryption setting in, the negotiated stream config out."""

from __future__ import annotations

from livekit.protocol.sip import SIPMediaEncryption

from sipbridge.media.srtp import SrtpKeys
from sipbridge.media.stream import StreamConfig
from sipbridge.sip import Encryption, MediaParams


def sdp_encryption(media_encryption: int) -> Encryption:
    """A trunk's or rule's ``SIPMediaEncryption`` as the SDP layer's setting (unknown values: disabled)."""
    if media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE:
        return Encryption.REQUIRE
    if media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW:
        return Encryption.ALLOW
    return Encryption.DISABLE


def stream_config(params: MediaParams, media_timeout: float, media_timeout_initial: float) -> StreamConfig:
    """The RTP stream's configuration from what offer/answer settled."""
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
        direction=params.direction,
    )
