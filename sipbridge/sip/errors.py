"""The one exception the SIP core raises internally; it never leaves the core's public entry points."""

from __future__ import annotations


class SipParseError(ValueError):
    """Malformed SIP, URI, header or SDP text. Carries the status a server should answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
