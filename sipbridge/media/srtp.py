"""SRTP with SDES keys (RFC 4568) through libsrtp: the key material of an ``a=crypto`` line and a protect /
unprotect pair for one call.

Each direction has its own master key: we protect with the key we put in our SDP and unprotect with the key
the peer put in its SDP. The SDP lines themselves are written and read in sipbridge.sip.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import pylibsrtp

MASTER_KEY_BYTES = 16
MASTER_SALT_BYTES = 14
_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
SUPPORTED_SUITES = tuple(_PROFILES)


class SrtpError(Exception):
    """A packet failed authentication or replay checks, or key material is malformed."""


def new_inline_key() -> str:
    """Fresh master key and salt, base64 as in ``a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<this>``."""
    return base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES + MASTER_SALT_BYTES)).decode("ascii")


def decode_inline_key(inline: str) -> bytes:
    """The 30 bytes of key and salt from an ``inline:`` value; lifetime and MKI parameters are ignored."""
    value = inline.removeprefix("inline:").split("|", 1)[0]
    try:
        material = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise SrtpError("inline key is not base64") from exc
    if len(material) != MASTER_KEY_BYTES + MASTER_SALT_BYTES:
        raise SrtpError(f"inline key has {len(material)} bytes, not 30")
    return material


@dataclass(frozen=True)
class SrtpKeys:
    suite: str
    local_key: str
    """base64 key and salt we protect with (from our SDP)."""
    remote_key: str
    """base64 key and salt the peer protects with (from its SDP)."""


class SrtpContext:
    """Protects what we send and unprotects what we receive, RTP and RTCP alike."""

    def __init__(self, keys: SrtpKeys) -> None:
        if keys.suite not in _PROFILES:
            raise SrtpError(f"unsupported SRTP suite {keys.suite}")
        profile = _PROFILES[keys.suite]
        outbound = pylibsrtp.Policy(
            key=decode_inline_key(keys.local_key),
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=profile,
        )
        inbound = pylibsrtp.Policy(
            key=decode_inline_key(keys.remote_key),
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=profile,
        )
        self._tx = pylibsrtp.Session(outbound)
        self._rx = pylibsrtp.Session(inbound)

    def protect(self, rtp: bytes) -> bytes:
        return bytes(self._tx.protect(rtp))

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return bytes(self._tx.protect_rtcp(rtcp))

    def unprotect(self, srtp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect(srtp))
        except pylibsrtp.Error as exc:
            raise SrtpError(str(exc)) from exc

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect_rtcp(srtcp))
        except pylibsrtp.Error as exc:
            raise SrtpError(str(exc)) from exc
