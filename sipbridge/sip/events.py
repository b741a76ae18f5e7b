"""Events the sans-IO core hands to its owner, in the order they happened (``UserAgent.next_event``).

Each names its call by a ``CallHandle``; what else the owner wants to know about the call it reads from the
agent (``UserAgent.call_info``), and it acts on the call through the agent too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

from .message import Response
from .offer_answer import MediaParams
from .transaction import Address

CallHandle = NewType("CallHandle", int)
"""A call's identity towards its owner: unique within a user agent and never reused, so a handle outliving its
call still names that call (and no other)."""


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE. The owner answers, rings, challenges, rejects or drops the call."""

    handle: CallHandle


@dataclass(frozen=True)
class CallProgress:
    """Outbound: a provisional response (180/183); ``media`` is set when it carried an SDP answer."""

    handle: CallHandle
    status: int
    reason: str
    media: MediaParams | None


@dataclass(frozen=True)
class CallAnswered:
    """Outbound: 2xx received and ACKed."""

    handle: CallHandle
    media: MediaParams


@dataclass(frozen=True)
class CallAcked:
    """Inbound: our 2xx was acknowledged; ``media`` is the negotiated result (delayed offers settle here)."""

    handle: CallHandle
    media: MediaParams | None


@dataclass(frozen=True)
class MediaUpdated:
    """A re-INVITE or UPDATE changed the media: hold/unhold, new remote address or codec."""

    handle: CallHandle
    media: MediaParams


@dataclass(frozen=True)
class DtmfReceived:
    handle: CallHandle
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class TransferProgress:
    """REFER outcome: 202 accepted, then NOTIFY sipfrag statuses; ``final`` marks the last one."""

    handle: CallHandle
    status: int
    final: bool

    @property
    def succeeded(self) -> bool:
        return self.final and 200 <= self.status < 300


@dataclass(frozen=True)
class CallEnded:
    """The call is over and its handle no longer readable. ``reason``: bye, cancel, rejected, timeout,
    unreachable, ack-timeout, session-expired, dropped. ``final_response``: for outbound calls, the final
    response our INVITE got, if any (its reason phrase and headers outlive the call). ``peer``: where the call's
    signalling went last (for an outbound call tried at several targets, the last one)."""

    handle: CallHandle
    reason: str
    status: int | None = None
    by_remote: bool = False
    final_response: Response | None = None
    peer: Address | None = None


@dataclass(frozen=True)
class RegistrationChanged:
    """An outbound registration changed state (``registering``, ``registered``, ``failing``, ``unregistering``,
    ``unregistered``); ``handle`` is the registration's (``UserAgent.register``), not a call's. ``status`` is the
    last final response (or 408/503 for no answer), ``expires_at`` when the binding runs out, ``next_attempt``
    when the next REGISTER goes (a refresh, or a retry after a failure), on the agent's clock."""

    handle: int
    state: str
    status: int | None
    expires_at: float | None
    next_attempt: float | None


Event = (
    IncomingCall | CallProgress | CallAnswered | CallAcked | MediaUpdated | DtmfReceived | TransferProgress | CallEnded
    | RegistrationChanged
)
