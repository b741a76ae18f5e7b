"""A failed call operation, with the error code and SIP status every front (Twirp API, psrpc) reports.

The code for a SIP status follows livekit/protocol's ``SIPStatus.GRPCStatus`` table (486 → resource_exhausted,
404 → not_found, 603 → permission_denied, 408 → deadline_exceeded, ...), so clients reading a Twirp error from
us or from livekit-server see the same ``code`` and the same ``sip_status_code`` / ``sip_status`` metadata.
"""

from __future__ import annotations

from livekit.protocol.sip import SIPStatusCode

_CODE_FOR_STATUS = {
    300: "invalid_argument", 301: "not_found", 302: "not_found", 305: "invalid_argument", 380: "invalid_argument",
    400: "invalid_argument", 401: "permission_denied", 402: "permission_denied", 403: "permission_denied",
    404: "not_found", 405: "invalid_argument", 406: "invalid_argument", 407: "unauthenticated",
    408: "deadline_exceeded", 409: "failed_precondition", 410: "not_found", 411: "invalid_argument",
    412: "failed_precondition", 413: "invalid_argument", 414: "invalid_argument", 415: "invalid_argument",
    416: "out_of_range", 417: "invalid_argument", 420: "invalid_argument", 421: "invalid_argument",
    422: "invalid_argument", 423: "invalid_argument", 424: "invalid_argument", 425: "invalid_argument",
    428: "unauthenticated", 429: "invalid_argument", 430: "invalid_argument", 433: "permission_denied",
    436: "unauthenticated", 437: "unauthenticated", 438: "unauthenticated", 439: "invalid_argument",
    440: "resource_exhausted", 469: "invalid_argument", 470: "permission_denied", 480: "resource_exhausted",
    481: "not_found", 482: "failed_precondition", 483: "failed_precondition", 484: "invalid_argument",
    485: "invalid_argument", 486: "resource_exhausted", 487: "aborted", 488: "invalid_argument",
    489: "invalid_argument", 491: "aborted", 493: "invalid_argument", 494: "unauthenticated",
    500: "failed_precondition", 501: "failed_precondition", 502: "failed_precondition", 503: "failed_precondition",
    504: "deadline_exceeded", 505: "invalid_argument", 513: "invalid_argument",
    600: "resource_exhausted", 603: "permission_denied", 604: "not_found", 606: "invalid_argument",
    607: "permission_denied", 608: "permission_denied",
}  # fmt: skip


def code_for_sip_status(status: int) -> str:
    """The Twirp/psrpc error code LiveKit gives a call that failed with SIP `status`."""
    if status in _CODE_FOR_STATUS:
        return _CODE_FOR_STATUS[status]
    if 500 <= status < 600:
        return "failed_precondition"
    return "invalid_argument" if status >= 300 else "unknown"


class CallError(Exception):
    """A call operation failed. ``code`` is the Twirp/psrpc code; ``sip_status`` the SIP status when one applies."""

    def __init__(self, code: str, message: str, sip_status: int | None = None, sip_reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sip_status = sip_status
        self.sip_reason = sip_reason

    @classmethod
    def from_sip_status(cls, status: int, reason: str, what: str) -> CallError:
        text = reason or _status_name(status)
        return cls(code_for_sip_status(status), f"{what}: sip status {status}: {text}", status, reason)

    @property
    def meta(self) -> dict[str, str]:
        """LiveKit's Twirp error metadata for a SIP status (``sip_status_code``, ``sip_status``)."""
        if self.sip_status is None:
            return {}
        return {"sip_status_code": str(self.sip_status), "sip_status": self.sip_reason or _status_name(self.sip_status)}


def _status_name(status: int) -> str:
    try:
        return SIPStatusCode.Name(status)
    except ValueError:
        return f"SIP_STATUS_{status}"
