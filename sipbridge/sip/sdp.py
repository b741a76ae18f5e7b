"""SDP (RFC 8866) parsing and serialisation: just the structure; negotiation lives in offer_answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SipParseError
from .syntax import bounded_int

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_CLOCK_RATE = 192_000
MAX_CHANNELS = 8


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value or ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    @property
    def direction(self) -> str | None:
        return _direction(self.attributes)

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """Payload type → (encoding name lower-cased, clock rate, channels)."""
        out: dict[str, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, desc = value.partition(" ")
            parts = desc.strip().split("/")
            rate = bounded_int(parts[1], MAX_CLOCK_RATE) if len(parts) >= 2 else None
            channels = bounded_int(parts[2], MAX_CHANNELS) if len(parts) > 2 else 1
            if rate is not None and channels is not None:
                out[pt] = (parts[0].lower(), rate, channels)
        return out

    def fmtp(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            out[pt] = params.strip()
        return out


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 0.0.0.0"
    name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    @property
    def direction(self) -> str | None:
        return _direction(self.attributes)

    def to_bytes(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name}"]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines.append(f"t={self.timing}")
        lines.extend(_attr(k, v) for k, v in self.attributes)
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c={m.connection}")
            lines.extend(_attr(k, v) for k, v in m.attributes)
        return ("\r\n".join(lines) + "\r\n").encode()


def _direction(attributes: list[tuple[str, str | None]]) -> str | None:
    """The first direction attribute (``a=sendonly``...) of a media section or of the session, if any."""
    for key, _ in attributes:
        if key in DIRECTIONS:
            return key
    return None


def _attr(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def parse_sdp(data: bytes) -> SessionDescription:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("SDP is not UTF-8") from exc
    sdp = SessionDescription()
    current: Media | None = None
    seen_version = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SipParseError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            seen_version = value.strip() == "0"
        elif kind == "m":
            current = _parse_media_line(value)
            sdp.media.append(current)
        elif kind == "c":
            _check_connection(value)
            if current is None:
                sdp.connection = value
            else:
                current.connection = value
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            target = sdp.attributes if current is None else current.attributes
            target.append((name.strip(), attr_value.strip() if colon else None))
        elif current is None and kind == "o":
            sdp.origin = value
        elif current is None and kind == "s":
            sdp.name = value
        elif current is None and kind == "t":
            sdp.timing = value
    if not seen_version:
        raise SipParseError("SDP without v=0")
    return sdp


def _parse_media_line(value: str) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise SipParseError(f"bad m= line {value!r}")
    port = bounded_int(parts[1].partition("/")[0], 65535)
    if port is None:
        raise SipParseError(f"bad media port {parts[1][:20]!r}")
    return Media(kind=parts[0], port=port, proto=parts[2], formats=parts[3:])


def _check_connection(value: str) -> None:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SipParseError(f"bad c= line {value!r}")


def connection_address(value: str | None) -> str | None:
    """The address of a ``c=`` value (``IN IP4 192.0.2.1`` → ``192.0.2.1``); TTL suffixes are dropped."""
    if not value:
        return None
    return value.split()[2].partition("/")[0]
