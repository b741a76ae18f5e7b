"""The two psrpc services a SIP node takes part in, typed: it serves `SIPInternal` and calls `IOInfo`.

These are thin: they fix service and method names, message types and topics, and take plain async callables, so
the call flows stay independent of the transport.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.empty_pb2 import Empty

from sipbridge.psrpc.bus import RedisBus
from sipbridge.psrpc.client import DEFAULT_TIMEOUT, RPCClient
from sipbridge.psrpc.rpc import (
    EvaluateSIPDispatchRulesRequest,
    EvaluateSIPDispatchRulesResponse,
    GetSIPTrunkAuthenticationRequest,
    GetSIPTrunkAuthenticationResponse,
    InternalCreateSIPParticipantRequest,
    InternalCreateSIPParticipantResponse,
    InternalTransferSIPParticipantRequest,
    InternalTransferSIPParticipantResponse,
    RecordCallContextRequest,
    UpdateSIPCallStateRequest,
)
from sipbridge.psrpc.server import Affinity, Incoming, Registration, RPCServer

SIP_INTERNAL = "SIPInternal"
IO_INFO = "IOInfo"  # livekit-server serves IOInfo, not IOInfoSIP

CreateSIPParticipant = Callable[
    [InternalCreateSIPParticipantRequest, Incoming], Awaitable[InternalCreateSIPParticipantResponse]
]
TransferSIPParticipant = Callable[
    [InternalTransferSIPParticipantRequest, Incoming], Awaitable[InternalTransferSIPParticipantResponse | None]
]


class SIPInternalServer:
    """What livekit-server calls on SIP nodes: outbound calls (one queue for all nodes) and per-call transfers.

    Raise `PsrpcError` from a handler to fail the call with that code and details (`PsrpcError.from_sip_status`
    for a SIP failure); any other exception reaches the caller as ``unknown`` with its text.
    """

    def __init__(self, bus: RedisBus, *, server_id: str | None = None) -> None:
        self._server = RPCServer(bus, SIP_INTERNAL, server_id=server_id)

    @property
    def server_id(self) -> str:
        return self._server.server_id

    async def register_create_sip_participant(
        self,
        handler: CreateSIPParticipant,
        *,
        topic: str = "",
        affinity: Affinity[InternalCreateSIPParticipantRequest] | None = None,
    ) -> Registration[InternalCreateSIPParticipantRequest]:
        """Take outbound calls. livekit-server sends them on topic ``""``; a `cluster_id` topic hides the node
        from it. `pause()` the registration while the node is full, `resume()` when it has room."""
        return await self._server.register(
            "CreateSIPParticipant",
            InternalCreateSIPParticipantRequest,
            InternalCreateSIPParticipantResponse,
            handler,
            topic=topic,
            affinity=affinity,
        )

    async def register_transfer_sip_participant(
        self, sip_call_id: str, handler: TransferSIPParticipant
    ) -> Registration[InternalTransferSIPParticipantRequest]:
        """Take transfers of one call (topic: its ``sip.callID``) while it lives; close the registration at its end.

        Older livekit-servers expect an empty reply: returning None, or a response they ignore, both work.
        """
        return await self._server.register(
            "TransferSIPParticipant",
            InternalTransferSIPParticipantRequest,
            InternalTransferSIPParticipantResponse,
            handler,
            topic=sip_call_id,
        )

    async def close(self) -> None:
        await self._server.close()


class IOInfoClient:
    """What a SIP node asks livekit-server about inbound calls, and what it reports about calls.

    Every method raises `PsrpcError` when the call fails (``unavailable`` "no response from servers" when no
    livekit-server listens, ``deadline_exceeded`` after `timeout`).
    """

    def __init__(self, bus: RedisBus, *, client_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._client = RPCClient(bus, IO_INFO, client_id=client_id)
        self._timeout = timeout

    async def start(self) -> None:
        """Subscribe to the replies now rather than on the first call."""
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def get_sip_trunk_authentication(
        self, request: GetSIPTrunkAuthenticationRequest
    ) -> GetSIPTrunkAuthenticationResponse:
        """The inbound trunk matching a call and its credentials (an empty reply: no trunk, accept)."""
        return await self._client.request(
            "GetSIPTrunkAuthentication", _safe_call(request), GetSIPTrunkAuthenticationResponse, timeout=self._timeout
        )

    async def evaluate_sip_dispatch_rules(
        self, request: EvaluateSIPDispatchRulesRequest
    ) -> EvaluateSIPDispatchRulesResponse:
        """Where a call goes: room, participant identity and attributes, or a PIN request, rejection or drop."""
        return await self._client.request(
            "EvaluateSIPDispatchRules", _safe_call(request), EvaluateSIPDispatchRulesResponse, timeout=self._timeout
        )

    async def update_sip_call_state(self, request: UpdateSIPCallStateRequest) -> None:
        await self._client.request("UpdateSIPCallState", request, Empty, timeout=self._timeout)

    async def record_call_context(self, request: RecordCallContextRequest) -> None:
        await self._client.request("RecordCallContext", request, Empty, timeout=self._timeout)


CallRequest = TypeVar("CallRequest", GetSIPTrunkAuthenticationRequest, EvaluateSIPDispatchRulesRequest)


def _safe_call(request: CallRequest) -> CallRequest:
    """The request with `call.from` and `call.to` present (if `call` is): livekit-server reads them unchecked,
    and a missing one crashes the whole server process (seen with v1.13.5)."""
    if not request.HasField("call") or (request.call.HasField("from") and request.call.HasField("to")):
        return request
    safe = type(request)()
    safe.CopyFrom(request)
    safe.call.from_.SetInParent()
    safe.call.to.SetInParent()
    return safe
