"""Room RPC as LiveKit defines it (another participant's `perform_rpc`): what a method handler gets, what it may
raise, and the built-in errors with the codes and messages LiveKit's SDKs use, so callers see the same errors
whichever transport answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class RpcInvocation:
    """One call of a method of ours."""

    request_id: str
    caller_identity: str
    method: str
    payload: str
    response_timeout: float
    """Seconds the caller waits for the answer."""


class RpcError(Exception):
    """An error answer: raise it in a handler to send `code`, `message` and `data` to the caller.

    Codes 1001-1999 are LiveKit's own (the class constants); a handler's other exceptions reach the caller as
    APPLICATION_ERROR.
    """

    UNSUPPORTED_METHOD = 1400
    UNSUPPORTED_VERSION = 1404
    APPLICATION_ERROR = 1500
    RESPONSE_TIMEOUT = 1502
    RECIPIENT_DISCONNECTED = 1503
    RESPONSE_PAYLOAD_TOO_LARGE = 1504

    BUILT_IN_MESSAGES: ClassVar[dict[int, str]] = {
        UNSUPPORTED_METHOD: "Method not supported at destination",
        UNSUPPORTED_VERSION: "Unsupported RPC version",
        APPLICATION_ERROR: "Application error in method handler",
        RESPONSE_TIMEOUT: "Response timeout",
        RECIPIENT_DISCONNECTED: "Recipient disconnected",
        RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
    }

    def __init__(self, code: int, message: str, data: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def built_in(cls, code: int) -> RpcError:
        """One of LiveKit's own errors, with the message its SDKs send."""
        return cls(code, cls.BUILT_IN_MESSAGES[code])


RpcHandler = Callable[[RpcInvocation], Awaitable[str]]
"""Answers one invocation with the response payload, or raises RpcError."""

MAX_PAYLOAD_BYTES = 15 * 1024
"""The largest request or response payload one RPC data packet carries (LiveKit's limit)."""
