"""Events the sans-IO core hands to its owner, in the order they happened (``UserAgent.next_event``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .offer_answer import MediaParams

if TYPE_CHECKING:
    from .call import Call


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE. The owner answers, rings, challenges, rejects or drops ``call``."""

    call: Call


@dataclass(frozen=True)
class CallProgress:
    """Outbound: a provisional response (180/183); ``media`` is set when it carried an SDP answer."""

    call: Call
    status: int
    reason: str
    media: MediaParams | None


@dataclass(frozen=True)
class CallAnswered:
    """Outbound: 2xx received and ACKed."""

    call: Call
    media: MediaParams


@dataclass(frozen=True)
class CallAcked:
    """Inbound: our 2xx was acknowledged; ``media`` is the negotiated result (delayed offers settle here)."""

    call: Call
    media: MediaParams | None


@dataclass(frozen=True)
class MediaUpdated:
    """A re-INVITE or UPDATE changed the media: hold/unhold, new remote address or codec."""

    call: Call
    media: MediaParams


@dataclass(frozen=True)
class DtmfReceived:
    call: Call
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class TransferProgress:
    """REFER outcome: 202 accepted, then NOTIFY sipfrag statuses; ``final`` marks the last one."""

    call: Call
    status: int
    final: bool

    @property
    def succeeded(self) -> bool:
        return self.final and 200 <= self.status < 300


@dataclass(frozen=True)
class CallEnded:
    """The call is over. ``reason``: bye, cancel, rejected, timeout, ack-timeout, session-expired, dropped."""

    call: Call
    reason: str
    status: int | None = None
    by_remote: bool = False


Event = (
    IncomingCall | CallProgress | CallAnswered | CallAcked | MediaUpdated | DtmfReceived | TransferProgress | CallEnded
)
