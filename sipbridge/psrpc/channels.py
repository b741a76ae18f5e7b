"""Redis channel names, in psrpc's "legacy" form (the only form its Redis bus uses).

A name is its parts joined with ``|``. Every character outside ``[0-9A-Za-z_]`` is escaped as ``u+`` and four
lowercase hex digits (``U+`` and eight above U+FFFF), so any topic is safe in a name and ``|`` stays a separator;
an empty part adds nothing, not even its separator. Topics are a sequence of parts spliced in place.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

Topic = str | Sequence[str]
"""A request topic: one string or a sequence of parts. ``""``, ``()`` and ``("",)`` are psrpc's "no topic"."""

_PLAIN = frozenset(string.ascii_letters + string.digits + "_")
_REPLACEMENT = 0xFFFD


def sanitize(part: str) -> str:
    """One part with every character outside ``[0-9A-Za-z_]`` escaped as Go's psrpc escapes it."""
    out: list[str] = []
    for char in part:
        if char in _PLAIN:
            out.append(char)
            continue
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            code = _REPLACEMENT  # a lone surrogate is not valid UTF-8; Go reads such bytes as U+FFFD
        out.append(f"u+{code:04x}" if code < 0x10000 else f"U+{code:08x}")
    return "".join(out)


def join(*parts: str | Sequence[str]) -> str:
    """Parts (or topic sequences, spliced) joined with ``|``; a part that sanitises to nothing is skipped.

    As in Go, the separator is written before a part whenever the previous part produced text, so only an
    empty *last* part would leave a trailing ``|``; every channel here ends in a non-empty literal.
    """
    out = ""
    wrote = False
    for part in parts:
        if wrote:
            out += "|"
        before = len(out)
        out += sanitize(part) if isinstance(part, str) else join(*part)
        wrote = len(out) > before
    return out


def request(service: str, method: str, topic: Topic) -> str:
    """Where requests for a method go; servers subscribe (as a queue for queue methods)."""
    return join(service, method, topic, "REQ")


def claim_response(service: str, method: str, topic: Topic) -> str:
    """Where a client announces which claiming server won; every server of the method listens."""
    return join(service, method, topic, "RCLAIM")


def claim_request(service: str, client_id: str) -> str:
    """Where servers send their claims to one client."""
    return join(service, client_id, "CLAIM")


def response(service: str, client_id: str) -> str:
    """Where the chosen server sends its response to one client."""
    return join(service, client_id, "RES")
