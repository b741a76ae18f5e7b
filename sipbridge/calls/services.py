"""What every call flow of a node shares: configuration, store, ports, LiveKit credentials, the active-call count."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sipbridge.calls.registry import CallRegistry
from sipbridge.config import Config
from sipbridge.media.ports import PortAllocator
from sipbridge.room import LiveKitCredentials
from sipbridge.store import SIPStore

DEFAULT_RINGING_TIMEOUT = 180.0
DEFAULT_MAX_CALL_DURATION = 24 * 3600.0
MEDIA_TIMEOUT = 15.0
MEDIA_TIMEOUT_INITIAL = 30.0
PIN_TIMEOUT = 30.0
"""Seconds the caller has for each digit of the PIN (and for the final '#')."""
PIN_MAX_DIGITS = 16


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
    active: set[str] = field(default_factory=set)
    """SIP Call-IDs of calls in progress (for ``max_active_calls`` and the start-up report)."""
    registry: CallRegistry = field(default_factory=CallRegistry)
    """Calls with a room participant, for transfers."""

    @property
    def at_capacity(self) -> bool:
        limit = self.config.max_active_calls
        return bool(limit) and len(self.active) >= limit


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a call carries its IDs (``callID`` is LiveKit's SCL_..., ``sipCallID`` the SIP Call-ID)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        ids = " ".join(f"{k}={v}" for k, v in extra.items() if v)
        return f"[{ids}] {msg}", kwargs
