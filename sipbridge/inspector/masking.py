"""Secrets taken out of SIP messages before a trace keeps them: what the inspector shows, exports (HEP) and
saves (pcap) must not let anyone replay a digest answer, learn a trunk password or a caller's PIN.

* digest parameters that prove knowledge of the password or let an answer be replayed (``response``, ``nonce``,
  ``cnonce``, ``nextnonce``, ``rspauth``) in the authentication headers;
* known secrets (a trunk's ``auth_password``) wherever they appear;
* while a caller enters a PIN, the digits of SIP INFO DTMF bodies.

Bodies are masked character for character, so Content-Length stays right and a saved pcap still parses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
_AUTH_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"www-authenticate",
        b"proxy-authenticate",
        b"authentication-info",
        b"proxy-authentication-info",
    }
)
_DIGEST_SECRET = re.compile(rb'(?i)\b(response|nonce|cnonce|nextnonce|rspauth)(\s*=\s*)("[^"]*"|[^,\s]*)')
_DTMF_RELAY_SIGNAL = re.compile(rb"(?im)^(\s*signal\s*=\s*)(\S+)")
_DTMF_TYPES = (b"application/dtmf-relay", b"application/dtmf")
_SENSITIVE_HEADER = re.compile(rb"(?im)^(?:proxy-|www-)?(?:authorization|authenticate|authentication-info)[ \t]*:")


def mask_message(data: bytes, secrets: Iterable[bytes] = (), pin_entry: bool = False) -> bytes:
    """``data`` with the secrets above replaced; ``pin_entry``: the call is collecting a PIN."""
    head, sep, body = data.partition(b"\r\n\r\n")
    needs_lines = _SENSITIVE_HEADER.search(head) is not None or (pin_entry and head[:5].upper() == b"INFO ")
    if not needs_lines and not any(secret and secret in data for secret in secrets):
        return data  # most messages: nothing to mask
    lines = head.split(b"\r\n")
    dtmf_body = False
    for i, line in enumerate(lines):
        name, colon, _ = line.partition(b":")
        if not colon:
            continue
        lowered = name.strip().lower()
        if lowered in _AUTH_HEADERS:
            lines[i] = _DIGEST_SECRET.sub(_masked_parameter, line)
        elif pin_entry and lowered in (b"content-type", b"c"):
            dtmf_body = any(kind in line.lower() for kind in _DTMF_TYPES)
    if dtmf_body and lines[0].upper().startswith(b"INFO "):
        body = _mask_dtmf_body(body)
    masked = b"\r\n".join(lines) + sep + body
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, b"*" * len(secret))
    return masked


def _masked_parameter(match: re.Match[bytes]) -> bytes:
    quoted = match.group(3).startswith(b'"')
    return match.group(1) + match.group(2) + (b'"' + MASK + b'"' if quoted else MASK)


def _mask_dtmf_body(body: bytes) -> bytes:
    """``Signal=5`` (application/dtmf-relay) or a bare ``5`` (application/dtmf) becomes ``x``, length kept."""
    if _DTMF_RELAY_SIGNAL.search(body):
        return _DTMF_RELAY_SIGNAL.sub(lambda m: m.group(1) + b"x" * len(m.group(2)), body)
    return re.sub(rb"[0-9A-Da-d*#]", b"x", body)
