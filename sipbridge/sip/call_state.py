"""What a call is, as its owner may read it: the state it is in and a frozen snapshot of what it knows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .events import CallHandle
from .message import Request, Response
from .offer_answer import MediaParams
from .sdp import SessionDescription
from .transaction import Address


class CallState(StrEnum):
    """incoming/calling → early → answered (inbound, waiting for the ACK) → confirmed → closing → ended."""

    INCOMING = "incoming"
    """Inbound: the INVITE arrived; at most 100 Trying sent."""
    CALLING = "calling"
    """Outbound: our INVITE is out, no provisional response with a To tag yet."""
    EARLY = "early"
    """A provisional response (180/183) sent (inbound) or received (outbound)."""
    ANSWERED = "answered"
    """Inbound: our 2xx is out, its ACK has not arrived."""
    CONFIRMED = "confirmed"
    """The dialog is up."""
    CLOSING = "closing"
    """Our BYE is out."""
    ENDED = "ended"


PRE_ANSWER = frozenset({CallState.INCOMING, CallState.CALLING, CallState.EARLY})


@dataclass(frozen=True)
class CallInfo:
    """A call at one moment (``UserAgent.call_info``). ``invite`` is the INVITE that made the call: the caller's
    (inbound, with the headers trunk matching reads) or our latest (outbound, after digest and 422 retries)."""

    handle: CallHandle
    call_id: str
    inbound: bool
    state: CallState
    invite: Request
    peer: Address
    """Where the INVITE came from (inbound) or went to (outbound)."""
    local_tag: str
    remote_tag: str | None
    """The far end's tag once a dialog exists (outbound: the fork that answered)."""
    offer: SessionDescription | None
    """Inbound: the caller's SDP offer; None for a delayed offer (we offer in the 200, the answer is in the ACK)."""
    media: MediaParams | None
    """The negotiated media, once there is any."""
    final_response: Response | None
    """Outbound: the final response our INVITE got (reason phrase and headers)."""
    session_interval: int | None
    """The RFC 4028 interval the call runs, if any."""
    registration: str | None = None
    """Inbound: the name of the registration of ours the INVITE was sent over (its Request-URI carries that
    registration's token and it came from that registrar), else None."""
    replaces: CallHandle | None = None
    """Inbound: the confirmed call this INVITE asks to take over (RFC 3891 Replaces), else None. The owner decides
    (is the new caller allowed to?) and, having answered, hangs the replaced call up."""
