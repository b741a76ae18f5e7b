"""What every call flow of a node shares: configuration, store, ports, LiveKit credentials, the active-call count."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from livekit.protocol.sip import SIPCallInfo

from sipbridge.calls.deciders import Decider
from sipbridge.calls.nonces import NonceLedger
from sipbridge.calls.registry import CallRegistry
from sipbridge.config import Config
from sipbridge.cpu_load import CpuLoad
from sipbridge.failure_budget import FailureBudget
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.settings import InspectorSettings
from sipbridge.media.ports import PortAllocator
from sipbridge.repeated_log import LoopRepeatedEventLog
from sipbridge.room import LiveKitCredentials
from sipbridge.stats import Stats
from sipbridge.store import SIPStore

DEFAULT_RINGING_TIMEOUT = 180.0
DEFAULT_MAX_CALL_DURATION = 24 * 3600.0
PIN_TIMEOUT = 30.0
"""Seconds the caller has for each digit of the PIN (and for the final '#')."""
PIN_MAX_DIGITS = 16


log = logging.getLogger("sipbridge.calls")

StateReporter = Callable[[SIPCallInfo], Awaitable[None]]


@dataclass
class CallServices:
    config: Config
    store: SIPStore
    ports: PortAllocator
    livekit: LiveKitCredentials
    codecs: tuple[str, ...]
    rtp_bind_host: str
    sdp_address: str
    """The address our SDP offers for media (the advertised one when behind NAT)."""
    decider: Decider
    """Who decides inbound calls: the store (standalone) or livekit-server (cluster)."""
    nonces: NonceLedger
    """Digest nonce uses already admitted (shared through Redis when configured): refuses replayed answers."""
    stats: Stats
    """The Go service's Prometheus metrics, which every call reports to."""
    active: set[str] = field(default_factory=set)
    """IDs of calls in progress (for ``max_active_calls`` and the gauges)."""
    registry: CallRegistry = field(default_factory=CallRegistry)
    """Calls with a room participant, for transfers."""
    digest_failures: FailureBudget = field(default_factory=lambda: FailureBudget(burst=10, rate=0.1))
    """Wrong digest answers per source address: after 10, one guess per 10 s (password guessing is refused)."""
    refused_invites: LoopRepeatedEventLog = field(
        default_factory=lambda: LoopRepeatedEventLog(log, "INVITEs refused", level=logging.INFO)
    )
    """Refusals (no trunk, no rule, a challenge, bad credentials) are logged a few lines at a time per source."""
    cpu: CpuLoad | None = None
    """The machine's CPU load, for ``max_cpu_utilization`` and the metrics (None: not watched)."""
    draining: bool = False
    """Set on SIGTERM: calls in progress go on, new ones are refused (503)."""
    report_state: StateReporter | None = None
    """Where calls report their state as they go (cluster mode: livekit-server's UpdateSIPCallState)."""
    traces: TraceBook = field(default_factory=lambda: TraceBook(InspectorSettings()))
    """Every call's SIP messages and quality (the inspector); calls claim their trace and end it."""
    registration_trunk: Callable[[str], str] = lambda name: ""
    """The inbound trunk named by a registration of ours (calls sent over it are admitted by that trunk)."""

    @property
    def at_capacity(self) -> bool:
        """No new call may start: ``max_active_calls`` reached, the machine's CPU above ``max_cpu_utilization``,
        or the node is draining."""
        return bool(self.refusal)

    @property
    def refusal(self) -> str:
        """Why a new call is refused now ("" when it is not)."""
        limit = self.config.max_active_calls
        if self.draining:
            return "the node is draining"
        if limit and len(self.active) >= limit:
            return f"max_active_calls ({limit}) reached"
        if self.cpu is not None and self.cpu.load > self.config.max_cpu_utilization:
            return f"CPU at {self.cpu.load:.0%}, above max_cpu_utilization ({self.config.max_cpu_utilization:.0%})"
        return ""


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a call carries its identifiers as fields (sipbridge.logs.CALL_FIELDS: ``callID`` is LiveKit's
    SCL_..., ``sipCallID`` the SIP Call-ID, then ``room`` and ``participant`` once known; `identify` adds them)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def identify(self, **fields: str) -> None:
        """Add or change identifiers of the call (e.g. ``room=``, ``participant=``, ``sipCallID=``)."""
        self.extra = {**(self.extra or {}), **fields}
