"""Sending one of our requests again after a refusal we can mend: a digest challenge (as client: one answer per
request, another only when the server says our nonce went stale) or 422 Session Interval Too Small (RFC 4028
§8.1: once, with the peer's Min-SE). Each function says which headers the retry replaces, or None for no retry."""

from __future__ import annotations

from .auth import DigestCredentials, authorization_for
from .headers import parse_header_params
from .message import Request, Response
from .session_timer import session_interval


def digest_retry(request: Request, response: Response, credentials: DigestCredentials) -> dict[str, str] | None:
    """The Authorization (401) or Proxy-Authorization (407) answering the response's challenge."""
    challenge = response.headers.get("WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate")
    if challenge is None:
        return None
    authorised = "Authorization" in request.headers or "Proxy-Authorization" in request.headers
    stale = "stale=true" in challenge.replace(" ", "").lower()
    if authorised and not stale:
        return None
    header = "Authorization" if response.status == 401 else "Proxy-Authorization"
    return {header: authorization_for(challenge, credentials, request.method, str(request.uri))}


def interval_retry(request: Request, response: Response) -> dict[str, str] | None:
    """Session-Expires and Min-SE raised to the Min-SE a 422 asks for, unless we asked for that already."""
    asked = session_interval(parse_header_params(response.headers.get("Min-SE") or "")[0])
    if asked is None or request.headers.get("Session-Expires") == str(asked):
        return None
    return {"Session-Expires": str(asked), "Min-SE": str(asked)}


def retried(request: Request, seq: int, headers: dict[str, str]) -> Request:
    """A copy of ``request`` with CSeq ``seq``, ``headers`` replaced and no Via (the retry is a new transaction)."""
    copy = Request(method=request.method, uri=request.uri, headers=request.headers.copy())
    copy.body = request.body
    copy.headers.remove("Via")
    copy.headers.set("CSeq", f"{seq} {request.method}")
    for name, value in headers.items():
        copy.headers.set(name, value)
    return copy
