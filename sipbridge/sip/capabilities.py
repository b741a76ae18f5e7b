"""What we tell peers we can do (Allow, Supported, User-Agent/Server) and the answers that follow from it:
OPTIONS, 405/501 for methods we do not serve, and which Require tokens we understand."""

from __future__ import annotations

from .dialog import new_tag
from .message import Request, Response, response_to

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK"
SUPPORTED = "timer, replaces, 100rel"
UNDERSTOOD = frozenset({"timer", "100rel", "replaces"})
"""Require tokens we act on; any other is answered 420."""
_ALLOWED = frozenset(m.strip() for m in ALLOW.split(","))
_KNOWN_ELSEWHERE = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"})


def add_capabilities(message: Request | Response, user_agent: str) -> None:
    message.headers.add("Allow", ALLOW)
    message.headers.add("Supported", SUPPORTED)
    message.headers.add("User-Agent" if isinstance(message, Request) else "Server", user_agent)


def options_response(request: Request, user_agent: str) -> Response:
    response = response_to(request, 200, to_tag=new_tag())
    add_capabilities(response, user_agent)
    response.headers.add("Accept", "application/sdp")
    return response


def method_refused(request: Request) -> Response:
    """405 for a SIP method we know but do not serve, 501 for one we do not know."""
    known = request.method in _ALLOWED or request.method in _KNOWN_ELSEWHERE
    response = response_to(request, 405 if known else 501, to_tag=new_tag())
    response.headers.add("Allow", ALLOW)
    return response
