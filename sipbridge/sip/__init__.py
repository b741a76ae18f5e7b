"""sipbridge's SIP stack: a sans-IO RFC 3261 core (``UserAgent``) and its asyncio edge (``Endpoint``)."""

from .auth import DigestCredentials, DigestVerdict
from .call_state import CallInfo, CallState
from .endpoint import Endpoint
from .errors import LocalProtocolError, SipParseError
from .events import (
    CallAcked,
    CallAnswered,
    CallEnded,
    CallHandle,
    CallProgress,
    DtmfReceived,
    Event,
    IncomingCall,
    MediaUpdated,
    TransferProgress,
)
from .legs import CallFailed, InboundLeg, OutboundLeg, SipLeg
from .offer_answer import Encryption, MediaParams, MediaSession, NegotiationError
from .settings import SipSettings
from .transaction import Address
from .useragent import UserAgent

__all__ = [
    "Address",
    "CallAcked",
    "CallAnswered",
    "CallEnded",
    "CallFailed",
    "CallHandle",
    "CallInfo",
    "CallProgress",
    "CallState",
    "DigestCredentials",
    "DigestVerdict",
    "DtmfReceived",
    "Encryption",
    "Endpoint",
    "Event",
    "InboundLeg",
    "IncomingCall",
    "LocalProtocolError",
    "MediaParams",
    "MediaSession",
    "MediaUpdated",
    "NegotiationError",
    "OutboundLeg",
    "SipLeg",
    "SipParseError",
    "SipSettings",
    "TransferProgress",
    "UserAgent",
]
