"""What a call and its user agent exchange, and nothing more.

A call never calls its agent: every input returns after queueing *outputs* (requests to start as client
transactions, responses on server transactions, raw datagrams, events, timer changes), which the agent drains
and carries out at once. What the call must know of its surroundings it reads through ``CallEnvironment``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .events import Event
from .message import Request, Response
from .settings import SipSettings
from .transaction import Address, ServerTransaction


@dataclass(frozen=True)
class SendRequest:
    """Start a client transaction for ``request`` (Via included) towards ``peer``. Its responses and timeout come
    back to the call, unless ``owned`` is False (a BYE releasing a stray fork needs no follow-up)."""

    request: Request
    peer: Address
    owned: bool = True


@dataclass(frozen=True)
class SendResponse:
    tx: ServerTransaction
    response: Response


@dataclass(frozen=True)
class StopRetransmitting:
    """Our 2xx on ``tx`` is acknowledged (by its ACK, or by a later request that proves it arrived)."""

    tx: ServerTransaction


@dataclass(frozen=True)
class Abandon:
    """Forget ``tx`` without answering it (``drop``)."""

    tx: ServerTransaction


@dataclass(frozen=True)
class Withdraw:
    """Stop sending ``request`` and forget its client transaction (its target is given up for another)."""

    request: Request


@dataclass(frozen=True)
class SendDatagram:
    """Bytes outside any transaction: the ACK for a 2xx."""

    data: bytes
    peer: Address


@dataclass(frozen=True)
class Emit:
    event: Event


@dataclass(frozen=True)
class SetTimer:
    """The call wants ``handle_timer`` called at ``due`` (it keeps its own deadlines)."""

    due: float


Output = SendRequest | SendResponse | StopRetransmitting | Abandon | Withdraw | SendDatagram | Emit | SetTimer


class CallEnvironment(Protocol):
    """What a call reads of its surroundings; it changes nothing through it."""

    @property
    def settings(self) -> SipSettings: ...

    def contact(self, peer: Address) -> str:
        """Our Contact value towards ``peer``."""
        ...

    def via(self, peer: Address) -> str:
        """A Via value towards ``peer`` with a fresh branch."""
        ...

    def record_route(self, peer: Address) -> str:
        """A Record-Route value naming us towards ``peer`` (``add_record_route``)."""
        ...

    def is_connected(self, peer: Address) -> bool:
        """Whether a stream connection with ``peer`` is open, as the edge last said."""
        ...
