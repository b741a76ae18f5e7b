"""psrpc over Redis, as livekit-server speaks it: how a SIP node serves `SIPInternal` and calls `IOInfo`.

See docs/psrpc.md. The bridge uses the typed services; the generic client and server are underneath.
"""

from sipbridge.psrpc.bus import RedisBus
from sipbridge.psrpc.client import RPCClient
from sipbridge.psrpc.errors import ErrorCode, PsrpcError
from sipbridge.psrpc.server import Incoming, Registration, RPCServer
from sipbridge.psrpc.services import IOInfoClient, SIPInternalServer

__all__ = [
    "ErrorCode",
    "IOInfoClient",
    "Incoming",
    "PsrpcError",
    "RPCClient",
    "RPCServer",
    "RedisBus",
    "Registration",
    "SIPInternalServer",
]
