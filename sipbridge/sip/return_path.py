"""Where the answers to a request go: RFC 3261 §18.2.1 ``received=`` and RFC 3581 ``rport=`` on the top Via, and
the address responses are sent to."""

from __future__ import annotations

from .headers import Via
from .message import Request
from .transaction import Address


def stamp_via(request: Request, source: Address) -> None:
    """Set ``received=`` and ``rport=`` on the top Via, so responses find their way back.

    Both are ours to set: a ``received=`` the sender wrote itself is dropped (honouring it would send our responses,
    with their retransmissions, wherever a sender names: a reflection attack)."""
    cached = request.top_via
    params = dict(cached.params)
    params.pop("received", None)
    if cached.host != source.host or "rport" in params:
        params["received"] = source.host
    if "rport" in params:
        params["rport"] = str(source.port)
    if params != cached.params:
        request.headers.replace_first("Via", str(Via(cached.transport, cached.host, cached.port, params)))


def response_address(request: Request, source: Address) -> Address:
    """Streams answer on the same connection. UDP answers the host the request came from (what our received=
    says), at its source port when it asked for rport, else at the port its Via names."""
    if source.reliable:
        return source
    via = request.top_via
    return Address("UDP", source.host, source.port if "rport" in via.params else (via.port or 5060))
