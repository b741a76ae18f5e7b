"""Requests refused before any call sees them: a loop (Max-Forwards 0), an extension we must not ignore, and
INVITEs whose body or session interval we cannot serve. Each refusal is the response to send."""

from __future__ import annotations

from .capabilities import UNDERSTOOD
from .headers import parse_header_params
from .message import Request, Response, response_to
from .sdp import SessionDescription
from .session_timer import session_interval


def refusal_of_request(request: Request) -> Response | None:
    """483 Too Many Hops, or 420 Bad Extension naming the Require tokens we do not understand."""
    max_forwards = request.headers.get("Max-Forwards")
    if max_forwards is not None and int(max_forwards) == 0 and request.method != "OPTIONS":
        return response_to(request, 483)
    unknown = request.headers.tokens("Require") - UNDERSTOOD
    if unknown and request.method not in ("CANCEL", "BYE"):
        response = response_to(request, 420)
        response.headers.add("Unsupported", ", ".join(sorted(unknown)))
        return response
    return None


def refusal_of_invite(
    invite: Request, offer: SessionDescription | None, local_tag: str, min_se: int
) -> Response | None:
    """415 for a body without SDP in it, 422 for a session interval below our ``min_se``."""
    if invite.body and offer is None:
        response = response_to(invite, 415, to_tag=local_tag)
        response.headers.add("Accept", "application/sdp")
        return response
    interval = session_interval(parse_header_params(invite.headers.get("Session-Expires") or "")[0])
    if interval is not None and interval < min_se:
        response = response_to(invite, 422, to_tag=local_tag)
        response.headers.add("Min-SE", str(min_se))
        return response
    return None
