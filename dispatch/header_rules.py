"""Which SIP header names and values a trunk may configure (RFC 3261 §25.1, as livekit/protocol checks).

A header name is an RFC 3261 ``token``. Headers the bridge must own (Call-ID, CSeq, Contact, From,
Via, ... and their compact forms) cannot be set through a trunk's ``headers``. A value is printable
text (no control characters except tab) of at most 1024 characters.
"""

from __future__ import annotations

import string

MAX_NAME_LENGTH = 255
MAX_VALUE_LENGTH = 1024

_TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")

RESERVED_HEADER_NAMES = frozenset(
    {
        "accept", "accept-encoding", "accept-language", "allow", "allow-events", "call-id", "contact",
        "content-encoding", "content-length", "content-type", "cseq", "event", "expires", "from",
        "max-forwards", "record-route", "refer-to", "reply-to",
        "k", "l", "m", "o", "r", "t", "u", "v",
    }
)  # fmt: skip


def header_name_problem(name: str, *, reserved_forbidden: bool) -> str | None:
    """Why ``name`` cannot be used as a header name, or None if it can."""
    if not name:
        return "header name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"header name too long (max {MAX_NAME_LENGTH} characters)"
    bad = sorted({c for c in name if c not in _TOKEN_CHARACTERS})
    if bad:
        return f"header name {name!r} contains invalid characters {''.join(bad)!r}"
    if reserved_forbidden and name.lower() in RESERVED_HEADER_NAMES:
        return f"header {name!r} is managed by the bridge and cannot be set"
    return None


def header_value_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be sent in header ``name``, or None if it can."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"header {name!r}: value too long (max {MAX_VALUE_LENGTH} characters)"
    for char in value:
        if char != "\t" and ord(char) < 0x80 and not 0x20 <= ord(char) <= 0x7E:
            return f"header {name!r}: value contains control character {ord(char)}"
    return None
