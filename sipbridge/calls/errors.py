"""How a call operation (placing a call, a transfer, finding a call) fails, whichever front asked for it.

`code` is one of the names gRPC, Twirp and psrpc share (``not_found``, ``unavailable``...); a failure a SIP
response decided carries that final status too. The standalone Twirp API and the cluster's psrpc server each
translate a `CallError` into their own error, so a call flow never needs to know which front it serves.
"""

from __future__ import annotations

from sipbridge.sip_failures import code_for_sip_status


class CallError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        sip_status: int | None = None,
        sip_reason: str = "",
        worded: bool = True,
        context: str = "",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.sip_status = sip_status
        """The final SIP status that decided the failure, if one did."""
        self.sip_reason = sip_reason
        self.worded = worded
        """False when the fronts should word the message as LiveKit words a SIP status."""
        self.context = context
        """What failed, put before that wording as livekit/sip puts it (``INVITE failed: ``)."""

    @classmethod
    def from_sip_status(cls, status: int, reason: str = "", text: str | None = None, *, context: str = "") -> CallError:
        """A call failed with a final SIP status: LiveKit's code for it; the message is `text`, or when None
        the fronts word it as LiveKit does (`context` then ``sip status: 486: Busy Here``)."""
        message = text or f"{context}sip status {status} {reason}".rstrip()
        code = code_for_sip_status(status)
        return cls(code, message, sip_status=status, sip_reason=reason, worded=text is not None, context=context)
