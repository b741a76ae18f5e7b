"""SIP requests and responses: parsing, serialisation, and Content-Length framing on streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SipParseError
from .headers import CSeq, Headers, Via, parse_cseq, parse_via
from .multipart import find_sdp
from .syntax import bounded_int, is_token
from .uri import NameAddr, Uri, parse_name_addr, parse_uri

MAX_MESSAGE_SIZE = 65535
MAX_HEADER_LINE = 8192
MAX_HEADERS = 256
MAX_CONTENT_LENGTH = 999_999_999
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
SINGLE_HEADERS = frozenset(("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"))

REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
}


@dataclass
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("no Via")
        return parse_via(value)

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self.headers.get("To") or "")

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").partition(";")[0].strip().lower()

    @property
    def sdp(self) -> bytes | None:
        """The SDP this message carries, alone or as one part of a multipart body."""
        return find_sdp(self.headers.get("Content-Type"), self.body)

    def _serialise(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{name}: {value}" for name, value in self.headers if name != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Request(_Message):
    method: str = ""
    uri: Uri = field(default_factory=lambda: parse_uri("sip:invalid"))

    def to_bytes(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} SIP/2.0")


@dataclass
class Response(_Message):
    status: int = 200
    reason: str = ""

    def to_bytes(self) -> bytes:
        return self._serialise(f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status, '')}")


Message = Request | Response


class MessageError(SipParseError):
    """A message whose headers were read but which is unusable; ``request`` lets a server answer it."""

    def __init__(self, message: str, status: int, request: Request | None) -> None:
        super().__init__(message, status)
        self.request = request


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one complete message. On a datagram the body is the rest, cut to Content-Length."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("message too large", 513)
    head_end, sep_len = _find_head_end(data)
    if head_end < 0:
        raise SipParseError("no end of headers")
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("headers are not UTF-8") from exc
    body = data[head_end + sep_len :]
    lines = _unfold(head)
    if not lines:
        raise SipParseError("empty message")
    headers = _parse_header_lines(lines[1:])
    message = _parse_start_line(lines[0], headers)
    request = message if isinstance(message, Request) else None
    repeated = headers.first_repeated(SINGLE_HEADERS)
    if repeated is not None:
        raise MessageError(f"{repeated} appears more than once", 400, request)
    length_text = headers.get("Content-Length")
    if length_text is None:
        if stream:
            raise MessageError("Content-Length required on stream transports", 400, request)
        length = len(body)
    else:
        parsed = bounded_int(length_text.strip(), MAX_CONTENT_LENGTH)
        if parsed is None:
            raise MessageError(f"bad Content-Length {length_text[:20]!r}", 400, request)
        length = parsed
    if length > len(body):
        raise MessageError("body shorter than Content-Length", 400, request)
    message.body = bytes(body[:length])
    _validate(message, request)
    return message


def _find_head_end(data: bytes) -> tuple[int, int]:
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end, 4
    end = data.find(b"\n\n")
    return end, 2


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for raw in head.replace("\r\n", "\n").split("\n"):
        if len(raw) > MAX_HEADER_LINE:
            raise SipParseError("header line too long", 413)
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip() + " " + raw.strip()
        else:
            lines.append(raw)
    return lines


def _parse_header_lines(lines: list[str]) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise SipParseError("too many headers", 413)
    headers = Headers()
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise SipParseError(f"bad header line {line[:60]!r}")
        headers.add(name, value.strip())
    return headers


def _parse_start_line(line: str, headers: Headers) -> Message:
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if parts[0] != "SIP/2.0":
            raise SipParseError("unsupported SIP version", 505)
        status = bounded_int(parts[1], 699) if len(parts) >= 2 else None
        if status is None or status < 100:
            raise SipParseError(f"bad status line {line[:60]!r}")
        return Response(status=status, reason=parts[2] if len(parts) > 2 else "", headers=headers)
    parts = line.split(" ")
    if len(parts) != 3 or not is_token(parts[0]):
        raise SipParseError(f"bad request line {line[:60]!r}")
    method, uri_text, version = parts
    partial = Request(method=method, headers=headers)
    if version.upper() != "SIP/2.0":
        raise MessageError("unsupported SIP version", 505, partial)
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise MessageError(str(exc), 400, partial) from exc
    if uri.scheme not in ("sip", "sips", "tel"):
        raise MessageError(f"unsupported URI scheme {uri.scheme}", 416, partial)
    return Request(method=method, uri=uri, headers=headers)


def _validate(message: Message, request: Request | None) -> None:
    for name in REQUIRED_HEADERS:
        if name not in message.headers:
            raise MessageError(f"missing {name}", 400, request)
    try:
        cseq = message.cseq
        message.top_via  # noqa: B018 - parsed for validation
        message.from_  # noqa: B018
        message.to  # noqa: B018
    except SipParseError as exc:
        raise MessageError(str(exc), 400, request) from exc
    if request is not None and cseq.method != request.method:
        raise MessageError("CSeq method does not match request method", 400, request)
    max_forwards = message.headers.get("Max-Forwards")
    if max_forwards is not None and bounded_int(max_forwards.strip(), 255) is None:
        raise MessageError("bad Max-Forwards", 400, request)


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length; CRLF keep-alives are skipped.

    Linear in the bytes received however they are cut: the search for the end of the headers resumes where it
    stopped, so a peer dripping a message a byte at a time costs a constant amount per byte.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self._searched = 0
        """Bytes at the start of the buffer already searched for the end of the headers."""
        self._total: int | None = None
        """The size of the message being received, once its headers are complete."""

    @property
    def pending(self) -> bool:
        """Part of a message has arrived and the rest has not."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete raw messages now available; SipParseError when the stream is unusable."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            if self._total is None:
                self._skip_keepalives()
                end = self._buffer.find(b"\r\n\r\n", max(0, self._searched - 3))
                if end < 0:
                    self._searched = len(self._buffer)
                    if self._searched > self._max_size:
                        raise SipParseError("headers too large", 513)
                    return out
                self._total = end + 4 + _content_length(bytes(self._buffer[:end]))
                if self._total > self._max_size:
                    raise SipParseError("message too large", 513)
            if len(self._buffer) < self._total:
                return out
            out.append(bytes(self._buffer[: self._total]))
            del self._buffer[: self._total]
            self._total = None
            self._searched = 0

    def _skip_keepalives(self) -> None:
        stripped = 0
        while self._buffer[stripped : stripped + 2] == b"\r\n":
            stripped += 2
        if stripped:
            del self._buffer[:stripped]
            self._searched = max(0, self._searched - stripped)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            length = bounded_int(value.strip().decode("ascii", "replace"), MAX_CONTENT_LENGTH)
            if length is None:
                raise SipParseError("bad Content-Length on stream")
            return length
    raise SipParseError("Content-Length required on stream transports")


def response_to(request: Request, status: int, reason: str = "", *, to_tag: str | None = None) -> Response:
    """A response copying the headers RFC 3261 §8.2.6.2 requires; dialog-creating ones echo Record-Route."""
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    if 100 < status < 300:
        for route in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", route)
    headers.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag is not None and status != 100 and request.to.tag is None:
        to = str(request.to.with_tag(to_tag))
    headers.add("To", to)
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", request.headers.get("CSeq") or "")
    if status == 100 and "Timestamp" in request.headers:
        headers.add("Timestamp", request.headers.get("Timestamp") or "")
    return Response(status=status, reason=reason or REASONS.get(status, ""), headers=headers)
