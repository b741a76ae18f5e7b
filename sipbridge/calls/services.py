"""What every call flow of a node shares: configuration, the decider, the layers below (RTP sessions, room
participants), LiveKit credentials, the node's capacity, its metrics, its records of calls and digest answers, and
its call traces (the inspector's book, which needs no socket: the unit tests use a real one).

`CallServices` is built complete by whoever runs the node (`sipbridge.service` with the real layers, the unit tests
with fakes): the flows read it, nobody patches it afterwards."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from livekit.protocol.sip import SIPCallInfo

from sipbridge.calls.capacity import Capacity
from sipbridge.calls.deciders import Decider
from sipbridge.calls.nonces import NonceLedger
from sipbridge.calls.registry import CallRegistry
from sipbridge.calls.seams import ParticipantFactory, RtpOpener
from sipbridge.config import Config, InspectorSettings
from sipbridge.failure_budget import FailureBudget
from sipbridge.inspector.book import TraceBook
from sipbridge.repeated_log import LoopRepeatedEventLog
from sipbridge.room import LiveKitCredentials
from sipbridge.stats import Stats

DEFAULT_RINGING_TIMEOUT = 180.0
DEFAULT_MAX_CALL_DURATION = 24 * 3600.0
PIN_TIMEOUT = 30.0
"""Seconds the caller has for each digit of the PIN (and for the final '#')."""
PIN_MAX_DIGITS = 16


log = logging.getLogger("sipbridge.calls")

StateReporter = Callable[[SIPCallInfo], Awaitable[None]]


@dataclass(frozen=True)
class CallServices:
    config: Config
    livekit: LiveKitCredentials
    codecs: tuple[str, ...]
    sdp_address: str
    """The address our SDP offers for media (the advertised one when behind NAT)."""
    open_rtp: RtpOpener
    """A call's RTP session on a free port pair of the range."""
    participants: ParticipantFactory
    """A call's room participant (on the configured room transport)."""
    decider: Decider
    """Who decides inbound calls: the store (standalone) or livekit-server (cluster)."""
    nonces: NonceLedger
    """Digest nonce uses already admitted (shared through Redis when configured): refuses replayed answers."""
    stats: Stats
    """The Go service's Prometheus metrics, which every call reports to."""
    capacity: Capacity
    """The calls in progress and whether a new one may start (``max_active_calls``, CPU, draining)."""
    registry: CallRegistry = field(default_factory=CallRegistry)
    """Calls with a room participant, for transfers."""
    digest_failures: FailureBudget = field(default_factory=lambda: FailureBudget(burst=10, rate=0.1))
    """Wrong digest answers per source address: after 10, one guess per 10 s (password guessing is refused)."""
    refused_invites: LoopRepeatedEventLog = field(
        default_factory=lambda: LoopRepeatedEventLog(log, "INVITEs refused", level=logging.INFO)
    )
    """Refusals (no trunk, no rule, a challenge, bad credentials) are logged a few lines at a time per source."""
    report_state: StateReporter | None = None
    """Where calls report their state as they go (cluster mode: livekit-server's UpdateSIPCallState)."""
    traces: TraceBook = field(default_factory=lambda: TraceBook(InspectorSettings()))
    """Every call's SIP messages and quality (the inspector); calls claim their trace and end it."""

    def registration_trunk(self, registration: str) -> str:
        """The inbound trunk named by a registration of ours (calls sent over it are admitted by that trunk)."""
        return next((r.trunk for r in self.config.registrations if r.name == registration), "")


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a call carries its identifiers as fields (sipbridge.logs.CALL_FIELDS: ``callID`` is LiveKit's
    SCL_..., ``sipCallID`` the SIP Call-ID, then ``room`` and ``participant`` once known; `identify` adds them)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def identify(self, **fields: str) -> None:
        """Add or change identifiers of the call (e.g. ``room=``, ``participant=``, ``sipCallID=``)."""
        self.extra = {**(self.extra or {}), **fields}
