"""LiveKit's error code for a call that failed with a final SIP status (486 → ``resource_exhausted``).

Named as gRPC names its codes (which are also Twirp's and psrpc's names for them). The call flows use it for
their `CallError`s, the psrpc layer for the errors it sends; both must say the same as livekit-server and the Go
service would.
"""

from __future__ import annotations

# SIP responses LiveKit maps to a specific code; other codes go by class (see `code_for_sip_status`).
_SPECIFIC: dict[str, tuple[int, ...]] = {
    "invalid_argument": (
        300, 305, 380, 400, 405, 406, 411, 413, 414, 415, 417, 420, 421, 422, 423, 424, 425, 429, 430, 439, 469,
        484, 485, 488, 489, 493, 505, 513, 606,
    ),
    "not_found": (301, 302, 404, 410, 481, 604),
    "permission_denied": (401, 402, 403, 433, 470, 603, 607, 608),
    "unauthenticated": (407, 428, 436, 437, 438, 494),
    "deadline_exceeded": (408, 504),
    "failed_precondition": (409, 412, 482, 483, 500, 501, 502, 503),
    "out_of_range": (416,),
    "resource_exhausted": (440, 480, 486, 600),
    "aborted": (487, 491),
}  # fmt: skip
_CODE_OF_SIP = {sip: code for code, sips in _SPECIFIC.items() for sip in sips}


def code_for_sip_status(sip_code: int) -> str:
    """The error code LiveKit sends for a failed call's final SIP status."""
    code = _CODE_OF_SIP.get(sip_code)
    if code is not None:
        return code
    if 300 <= sip_code < 500 or 600 <= sip_code < 700:
        return "invalid_argument"
    if 500 <= sip_code < 600:
        return "failed_precondition"
    return "unknown"  # provisional, success or out of range: not a failure status, nothing better to say
