"""RFC 3264 offer/answer for one audio stream: codec choice by our preference, DTMF, ptime, direction, SDES.

``MediaSession`` keeps the local side of one call's SDP (origin, version, last description) so re-INVITEs are
answered from the offer in hand — a hold (``sendonly``) gets ``recvonly``, never a cached ``sendrecv`` — and an
unchanged refresh gets the same description and version back.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .errors import SipParseError
from .sdp import Media, SessionDescription, connection_address
from .syntax import bounded_int


@dataclass(frozen=True)
class Codec:
    name: str
    clock_rate: int
    static_payload_type: int | None = None
    channels: int = 1
    fmtp: str | None = None

    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels > 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"


CODECS = {
    "PCMU": Codec("PCMU", 8000, 0),
    "PCMA": Codec("PCMA", 8000, 8),
    "G722": Codec("G722", 8000, 9),
    "opus": Codec("opus", 48000, None, 2, "minptime=10;useinbandfec=1"),
}
TELEPHONE_EVENT = Codec("telephone-event", 8000, None, 1, "0-16")
DEFAULT_CODECS = ("G722", "PCMU", "PCMA", "opus")
TELEPHONE_EVENT_48K = Codec("telephone-event", 48000, None, 1, "0-16")  # RFC 4733 events beside Opus
_DYNAMIC_PT = {("opus", 48000): 111, ("telephone-event", 8000): 101, ("telephone-event", 48000): 110}
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
MIN_PTIME, MAX_PTIME = 10, 200
"""The a=ptime values we take (ms); others are ignored for our default."""


class Encryption(enum.Enum):
    """Mirrors LiveKit's SIPMediaEncryption: DISABLE, ALLOW (best effort), REQUIRE."""

    DISABLE = "disable"
    ALLOW = "allow"
    REQUIRE = "require"


class NegotiationError(SipParseError):
    """Nothing in the offer fits (codec, transport or encryption): answered 488 Not Acceptable Here."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 488)


@dataclass(frozen=True)
class Srtp:
    suite: str
    local_key: str  # base64 master key + salt we send with
    remote_key: str  # base64 master key + salt the peer sends with


@dataclass(frozen=True)
class MediaParams:
    """What the media layer needs after a successful offer/answer."""

    remote_address: str
    remote_port: int
    codec: Codec
    payload_type: int
    dtmf_payload_type: int | None
    dtmf_clock_rate: int | None  # 8000, or 48000 beside Opus
    ptime: int
    direction: str  # ours: whether we send and/or receive
    srtp: Srtp | None


def _canonical_codec_name(name: str) -> str | None:
    for key in CODECS:
        if key.lower() == name.lower():
            return key
    return None


def _answer_direction(offered: str) -> str:
    return {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}.get(offered, "sendrecv")


def _new_key() -> str:
    return base64.b64encode(os.urandom(30)).decode()


class MediaSession:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        codecs: Sequence[str] = DEFAULT_CODECS,
        encryption: Encryption = Encryption.DISABLE,
        ptime: int = 20,
    ) -> None:
        names = [_canonical_codec_name(c) for c in codecs]
        self.codecs = [CODECS[n] for n in names if n is not None]
        if not self.codecs:
            raise ValueError(f"no known codec in {list(codecs)}")
        self.address = address
        self.port = port
        self.encryption = encryption
        self.ptime = ptime
        self._session_id = random.randint(1, 2**62)
        self._version = self._session_id
        self._local: SessionDescription | None = None
        self._offer_key: str | None = None
        self.current: MediaParams | None = None

    @property
    def local(self) -> SessionDescription | None:
        """The description we sent last (offer or answer)."""
        return self._local

    @property
    def _addrtype(self) -> str:
        return "IP6" if ipaddress.ip_address(self.address).version == 6 else "IP4"

    def _describe(self, media: Media) -> SessionDescription:
        """Wrap a media section; the version only moves when the description changes (RFC 3264 §8)."""
        candidate = SessionDescription(
            origin=f"- {self._session_id} {self._version} IN {self._addrtype} {self.address}",
            name="sipbridge",
            connection=f"IN {self._addrtype} {self.address}",
            media=[media],
        )
        if self._local is not None and self._local.to_bytes() != candidate.to_bytes():
            self._version += 1
            candidate.origin = f"- {self._session_id} {self._version} IN {self._addrtype} {self.address}"
        self._local = candidate
        return candidate

    def create_offer(self, direction: str = "sendrecv") -> SessionDescription:
        formats: list[str] = []
        attributes: list[tuple[str, str | None]] = []
        events = [TELEPHONE_EVENT] + ([TELEPHONE_EVENT_48K] if CODECS["opus"] in self.codecs else [])
        for codec in [*self.codecs, *events]:
            pt = codec.static_payload_type
            if pt is None:
                pt = _DYNAMIC_PT[(codec.name, codec.clock_rate)]
            formats.append(str(pt))
            attributes.append(("rtpmap", f"{pt} {codec.rtpmap()}"))
            if codec.fmtp:
                attributes.append(("fmtp", f"{pt} {codec.fmtp}"))
        attributes.append(("ptime", str(self.ptime)))
        proto = "RTP/AVP"
        if self.encryption is not Encryption.DISABLE:
            self._offer_key = self._offer_key or _new_key()
            attributes.append(("crypto", f"1 {SRTP_SUITES[0]} inline:{self._offer_key}"))
            if self.encryption is Encryption.REQUIRE:
                proto = "RTP/SAVP"
        attributes.append((direction, None))
        return self._describe(Media("audio", self.port, proto, formats, attributes=attributes))

    def receive_offer(self, offer: SessionDescription) -> SessionDescription:
        """Answer an offer (initial or re-INVITE/UPDATE). Raises NegotiationError for 488."""
        media = self._pick_audio(offer)
        params, formats, attributes = self._negotiate(offer, media)
        crypto = self._answer_crypto(media)
        if crypto is not None:
            suite, tag, remote_key, local_key = crypto
            attributes.append(("crypto", f"{tag} {suite} inline:{local_key}"))
            params = replace(params, srtp=Srtp(suite, local_key, remote_key))
        direction = _answer_direction(params.direction)
        attributes.append((direction, None))
        self.current = replace(params, direction=direction)
        return self._describe(Media("audio", self.port, media.proto, formats, attributes=attributes))

    def receive_answer(self, answer: SessionDescription) -> MediaParams:
        media = self._pick_audio(answer)
        params, _, _ = self._negotiate(answer, media)
        srtp = None
        if self.encryption is not Encryption.DISABLE and self._offer_key is not None:
            remote = _supported_crypto(media)
            if remote is not None:
                srtp = Srtp(remote[0], self._offer_key, remote[2])
            elif self.encryption is Encryption.REQUIRE:
                raise NegotiationError("answer has no usable crypto line")
        sent = self._local.media[0].direction if self._local and self._local.media else None
        direction = _answer_direction(params.direction) if params.direction != "sendrecv" else sent or "sendrecv"
        self.current = replace(params, srtp=srtp, direction=direction)
        return self.current

    @staticmethod
    def _pick_audio(sdp: SessionDescription) -> Media:
        for media in sdp.media:
            if media.kind == "audio" and media.port != 0 and media.proto.upper() in ("RTP/AVP", "RTP/SAVP"):
                return media
        raise NegotiationError("no usable audio stream")

    def _negotiate(
        self, sdp: SessionDescription, media: Media
    ) -> tuple[MediaParams, list[str], list[tuple[str, str | None]]]:
        rtpmap = media.rtpmap()
        offered: dict[str, str] = {}  # codec name → payload type, in offer order
        events: dict[int, str] = {}  # telephone-event clock rate → payload type
        for pt in media.formats:
            if bounded_int(pt, 127) is None:
                continue
            name, rate, _ = rtpmap.get(pt) or _static(pt)
            if name == "telephone-event":
                events.setdefault(rate, pt)
                continue
            canonical = _canonical_codec_name(name)
            if canonical is not None and CODECS[canonical].clock_rate == rate:
                offered.setdefault(canonical, pt)
        chosen = next((c for c in self.codecs if c.name in offered), None)
        if chosen is None:
            raise NegotiationError("no common codec")
        pt = offered[chosen.name]
        # Events should share the audio clock (RFC 4733 §2.1); 8 kHz events are the universal fallback.
        dtmf_rate = chosen.clock_rate if chosen.clock_rate in events else 8000
        dtmf_pt = events.get(dtmf_rate)
        address = connection_address(media.connection or sdp.connection)
        if address is None:
            raise NegotiationError("no connection address")
        formats = [pt]
        attributes: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {chosen.rtpmap()}")]
        fmtp = media.fmtp().get(pt) or chosen.fmtp
        if fmtp:
            attributes.append(("fmtp", f"{pt} {fmtp}"))
        if dtmf_pt is not None:
            formats.append(dtmf_pt)
            attributes.append(("rtpmap", f"{dtmf_pt} telephone-event/{dtmf_rate}"))
            attributes.append(("fmtp", f"{dtmf_pt} {media.fmtp().get(dtmf_pt) or TELEPHONE_EVENT.fmtp}"))
        asked = bounded_int(media.attribute("ptime") or "", MAX_PTIME)
        ptime = asked if asked is not None and asked >= MIN_PTIME else self.ptime
        attributes.append(("ptime", str(ptime)))
        remote_direction = media.direction or sdp.direction or "sendrecv"
        if address in ("0.0.0.0", "::") and remote_direction == "sendrecv":
            remote_direction = "sendonly"  # RFC 2543-style hold
        params = MediaParams(
            remote_address=address,
            remote_port=media.port,
            codec=chosen,
            payload_type=int(pt),
            dtmf_payload_type=int(dtmf_pt) if dtmf_pt is not None else None,
            dtmf_clock_rate=dtmf_rate if dtmf_pt is not None else None,
            ptime=ptime,
            direction=remote_direction,
            srtp=None,
        )
        return params, formats, attributes

    def _answer_crypto(self, media: Media) -> tuple[str, str, str, str] | None:
        secure = media.proto.upper() == "RTP/SAVP"
        remote = _supported_crypto(media) if self.encryption is not Encryption.DISABLE else None
        if remote is None:
            if secure or self.encryption is Encryption.REQUIRE:
                raise NegotiationError("encryption mismatch")
            return None
        suite, tag, key = remote
        if self.current is not None and self.current.srtp is not None and self.current.srtp.remote_key == key:
            local_key = self.current.srtp.local_key
        else:
            local_key = _new_key()
        return suite, tag, key, local_key


def _static(pt: str) -> tuple[str, int, int]:
    for codec in CODECS.values():
        if str(codec.static_payload_type) == pt:
            return codec.name.lower(), codec.clock_rate, codec.channels
    return "", 0, 0


def _supported_crypto(media: Media) -> tuple[str, str, str] | None:
    """First ``a=crypto`` line with a suite we support: (suite, tag, base64 key)."""
    for value in media.attribute_values("crypto"):
        parts = value.split()
        if len(parts) >= 3 and parts[1] in SRTP_SUITES and parts[2].startswith("inline:"):
            return parts[1], parts[0], parts[2][len("inline:") :].partition("|")[0]
    return None
