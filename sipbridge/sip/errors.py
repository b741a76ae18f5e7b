"""The SIP core's two exceptions: one for bad input from the network, one for a wrong action by its owner."""

from __future__ import annotations


class SipParseError(ValueError):
    """Malformed SIP, URI, header or SDP text. Carries the status a server should answer with.

    Raised inside the core and answered there; it never leaves ``UserAgent.receive_datagram``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(Exception):
    """The owner asked for an action the call's state does not allow (h11's rule): a bug in the caller, never
    something the network did. Nothing was sent and the call is unchanged."""

    def __init__(self, action: str, state: str, why: str = "") -> None:
        super().__init__(f"{action} is not allowed in state {state}" + (f": {why}" if why else ""))
        self.action = action
        self.state = state
