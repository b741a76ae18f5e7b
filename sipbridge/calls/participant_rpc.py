"""The room RPC methods every SIP participant answers, as LiveKit's Go SIP service registers them, so an agent's
``perform_rpc`` works the same on either bridge:

* ``lk.sip.GetRemoteHeaders``: ``{"include": [...], "exclude": [...]}`` → ``{"headers": {name: value}}``, the
  SIP headers of the other side (the caller's INVITE; the callee's 200 OK), without the transport and session
  ones, filtered by the (case-insensitive) lists;
* ``lk.sip.EndCall``: ``{"headers": {name: value}}`` → ``{}``, hangs up with those headers on the BYE.

Payloads are JSON with the field names of LiveKit's ``SIPParticipantV1`` messages.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from sipbridge.room.rpc import RpcError, RpcHandler, RpcInvocation

GET_REMOTE_HEADERS = "lk.sip.GetRemoteHeaders"
END_CALL = "lk.sip.EndCall"
NOT_FOR_AGENTS = frozenset({
    "route", "record-route", "via", "supported", "accept", "allow", "allow-events", "content-type",
    "content-length", "content-encoding", "content-disposition", "cseq", "event", "expires", "session-expires",
    "min-se", "max-forwards",
})  # fmt: skip
"""Headers GetRemoteHeaders leaves out (the Go service's list): they describe transport and session, not the call."""


def remote_headers(
    headers: Iterable[tuple[str, str]], include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> dict[str, str]:
    """The headers an agent may read: ``include`` (when given) keeps only those names, ``exclude`` drops names;
    a name given twice keeps its last value."""
    only = {name.lower() for name in include}
    skip = {name.lower() for name in exclude} | NOT_FOR_AGENTS
    return {name: value for name, value in headers if name.lower() not in skip and (not only or name.lower() in only)}


class RpcServer(Protocol):
    """Whoever answers room RPC for the call (its participant)."""

    def register_rpc(self, method: str, handler: RpcHandler) -> None: ...


def register(
    participant: RpcServer,
    headers: Callable[[], Iterable[tuple[str, str]]],
    end_call: Callable[[Mapping[str, str]], Awaitable[None]],
) -> None:
    """Answer both methods for this participant's call."""

    async def get_remote_headers(invocation: RpcInvocation) -> str:
        request = _payload(invocation)
        include, exclude = _names(request, "include"), _names(request, "exclude")
        return json.dumps({"headers": remote_headers(headers(), include, exclude)})

    async def hang_up(invocation: RpcInvocation) -> str:
        extra = _payload(invocation).get("headers") or {}
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise RpcError(RpcError.APPLICATION_ERROR, "headers: expected an object of strings")
        await end_call(extra)
        return "{}"

    participant.register_rpc(GET_REMOTE_HEADERS, get_remote_headers)
    participant.register_rpc(END_CALL, hang_up)


def _payload(invocation: RpcInvocation) -> dict[str, Any]:
    try:
        request = json.loads(invocation.payload) if invocation.payload.strip() else {}
    except ValueError as e:
        raise RpcError(RpcError.APPLICATION_ERROR, f"payload is not JSON: {e}") from None
    if not isinstance(request, dict):
        raise RpcError(RpcError.APPLICATION_ERROR, "payload: expected a JSON object")
    return request


def _names(request: Mapping[str, Any], field: str) -> list[str]:
    names = request.get(field) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RpcError(RpcError.APPLICATION_ERROR, f"{field}: expected a list of header names")
    return names
