"""Bodies of the small in-dialog payloads: SIP INFO DTMF and REFER's message/sipfrag NOTIFY."""

from __future__ import annotations

from .syntax import bounded_int

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
SIPFRAG = "message/sipfrag"
_EVENT_DIGITS = "0123456789*#ABCD"
MAX_DTMF_DURATION_MS = 60_000


def _digit(text: str) -> str | None:
    text = text.strip().upper()
    if len(text) == 1 and text in _EVENT_DIGITS:
        return text
    event = bounded_int(text, len(_EVENT_DIGITS) - 1)
    return _EVENT_DIGITS[event] if event is not None else None  # RFC 4733 event number, e.g. 10 is '*'


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """(digit, duration ms) from an INFO body, or None when it carries no DTMF we understand."""
    text = body.decode("utf-8", "replace")
    if content_type == DTMF:
        digit = _digit(text)
        return (digit, 250) if digit else None
    if content_type != DTMF_RELAY:
        return None
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    digit = _digit(fields.get("signal", ""))
    duration = bounded_int(fields.get("duration", "250"), MAX_DTMF_DURATION_MS)
    return (digit, duration if duration is not None else 250) if digit else None


def dtmf_relay_body(digit: str, duration_ms: int = 250) -> bytes:
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()


def parse_sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``SIP/2.0 200 OK`` sipfrag, or None."""
    first = body.decode("utf-8", "replace").strip().split("\r\n")[0].split("\n")[0]
    parts = first.split()
    status = bounded_int(parts[1], 699) if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" else None
    return status if status is not None and status >= 100 else None
