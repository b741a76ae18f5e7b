"""A cluster node: serves livekit-server's `SIPInternal` over psrpc with the same call flows as the standalone API.

livekit-server keeps the trunks and rules and answers `lk sip ...`; it sends each CreateSIPParticipant to the queue
every node subscribes to (topic ``""``, or the node's ``cluster_id``), and each TransferSIPParticipant to the topic
of the call's ``sip.callID``, which the node holding the call registers while the call lives. A node that is full
(``max_active_calls``) or draining leaves the queue, since a node that wins a request must serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from livekit.protocol.sip import SIPFeature, SIPStatus, SIPTransferReason, SIPTransferStatus

from dispatch.errors import DispatchError
from dispatch.outbound import (
    DEFAULT_TRANSFER_TIMEOUT,
    OutboundPlan,
    duration_seconds,
    media_with_encryption,
    refer_target,
)
from sipbridge.calls.control import CallControl
from sipbridge.calls.errors import CallError
from sipbridge.calls.registry import ActiveCall
from sipbridge.calls.services import CallServices
from sipbridge.calls.waiting import cancel_task
from sipbridge.psrpc import Incoming, Registration, SIPInternalServer
from sipbridge.psrpc.bus import RedisBus
from sipbridge.psrpc.errors import ErrorCode, PsrpcError
from sipbridge.psrpc.rpc import (
    InternalCreateSIPParticipantRequest,
    InternalCreateSIPParticipantResponse,
    InternalTransferSIPParticipantRequest,
    InternalTransferSIPParticipantResponse,
)

log = logging.getLogger("sipbridge.cluster")


def plan_from_internal(request: InternalCreateSIPParticipantRequest) -> OutboundPlan:
    """livekit-server's request (already merged with the trunk, with ``sip.*`` attributes) as the outbound plan."""
    return OutboundPlan(
        lk_call_id=request.sip_call_id,
        trunk_id=request.sip_trunk_id,
        address=request.address,
        transport=request.transport,
        number=request.number,
        call_to=request.call_to,
        from_host=request.hostname,
        username=request.username,
        password=request.password,
        room_name=request.room_name,
        participant_identity=request.participant_identity,
        participant_name=request.participant_name,
        participant_metadata=request.participant_metadata,
        participant_attributes=dict(request.participant_attributes),
        headers=dict(request.headers),
        include_headers=request.include_headers,
        headers_to_attributes=dict(request.headers_to_attributes),
        attributes_to_headers=dict(request.attributes_to_headers),
        dtmf=request.dtmf,
        play_dialtone=request.play_dialtone,
        ringing_timeout=duration_seconds(request, "ringing_timeout"),
        max_call_duration=duration_seconds(request, "max_call_duration"),
        krisp_enabled=SIPFeature.KRISP_ENABLED in request.enabled_features,
        media=media_with_encryption(request.media if request.HasField("media") else None, request.media_encryption),
        wait_until_answered=request.wait_until_answered,
        display_name=request.display_name if request.HasField("display_name") else None,
        ws_url=request.ws_url,
        token=request.token,
        request_uri=request.sip_request_uri if request.HasField("sip_request_uri") else None,
        from_header=request.sip_from_header if request.HasField("sip_from_header") else None,
        to_header=request.sip_to_header if request.HasField("sip_to_header") else None,
        to_user_override=request.to_user_override,
    )


class ClusterNode:
    def __init__(self, services: CallServices, control: CallControl, bus: RedisBus) -> None:
        self.services = services
        self.control = control
        self.server = SIPInternalServer(bus)
        self._outbound: Registration[InternalCreateSIPParticipantRequest] | None = None
        self._transfers: dict[str, asyncio.Task[Registration[InternalTransferSIPParticipantRequest]]] = {}
        self._capacity: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        topic = self.services.config.cluster_id
        self._outbound = await self.server.register_create_sip_participant(
            self._create, topic=topic, affinity=self._affinity
        )
        self.services.registry.on_change(self._call_changed)
        self._capacity = asyncio.create_task(self._follow_capacity())
        log.info("cluster: serving SIPInternal on Redis (topic %r, server %s)", topic, self.server.server_id)

    def _affinity(self, request: InternalCreateSIPParticipantRequest) -> float:
        """How much this node wants an outbound call, as the Go service weighs it: not at all for a trunk outside
        ``sip_trunk_ids``; else more the emptier it is (against ``max_active_calls`` when set)."""
        config = self.services.config
        if config.sip_trunk_ids and request.sip_trunk_id not in config.sip_trunk_ids:
            return -1.0
        active = len(self.services.capacity.active)
        if config.max_active_calls:
            return max(0.0, 1 - active / config.max_active_calls)
        return 1 / (1 + active)

    async def _create(
        self, request: InternalCreateSIPParticipantRequest, incoming: Incoming
    ) -> InternalCreateSIPParticipantResponse:
        plan = plan_from_internal(request)
        try:
            plan.addressing("own.host")  # an override URI that cannot be used fails the request, undialled
        except DispatchError as e:
            raise PsrpcError(ErrorCode.INVALID_ARGUMENT, e.message) from e
        with psrpc_failures():
            created = await self.control.create_participant(plan)
        return InternalCreateSIPParticipantResponse(
            participant_id=created.participant_id,
            participant_identity=created.participant_identity,
            sip_call_id=created.sip_call_id,
        )

    async def _transfer(
        self, request: InternalTransferSIPParticipantRequest, incoming: Incoming
    ) -> InternalTransferSIPParticipantResponse:
        with psrpc_failures():
            call = self.control.find_call(request.sip_call_id)
            done = await call.transfer(
                refer_target(request.transfer_to),
                play_dialtone=request.play_dialtone,
                headers=dict(request.headers),
                within=duration_seconds(request, "ringing_timeout") or DEFAULT_TRANSFER_TIMEOUT,
            )
        return InternalTransferSIPParticipantResponse(
            transfer_id=done.transfer_id,
            status=SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
            reason=SIPTransferReason.STR_COMPLETED,
            sip_status=SIPStatus(code=done.sip_status, status=done.sip_reason),  # type: ignore[arg-type]  # open enum
        )

    def _call_changed(self, call: ActiveCall, added: bool) -> None:
        """A call's transfer topic lives as long as the call."""
        call_id = call.lk_call_id
        if added:
            self._transfers[call_id] = asyncio.create_task(
                self.server.register_transfer_sip_participant(call_id, self._transfer)
            )
        elif (registering := self._transfers.pop(call_id, None)) is not None:
            closing = asyncio.create_task(_close_when_registered(call_id, registering))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _follow_capacity(self) -> None:
        """Leave the outbound queue while full or draining, join it again when there is room: at every change
        of the node's capacity (a call begins or ends, draining starts, the CPU crosses its limit)."""
        assert self._outbound is not None
        capacity = self.services.capacity
        while True:
            changed = capacity.next_change()  # before reading: a change while we pause or resume is not lost
            refusal = capacity.refusal
            # Logged once in effect (out of the queue, or back in it), so the line tells when it holds.
            if refusal and not self._outbound.paused:
                await self._outbound.pause()
                log.info("cluster: taking no outbound calls: %s", refusal)
            elif not refusal and self._outbound.paused:
                await self._outbound.resume()
                log.info("cluster: taking outbound calls again")
            await changed

    async def close(self) -> None:
        await cancel_task(self._capacity, log)
        for call_id, registering in self._transfers.items():
            await _close_when_registered(call_id, registering)
        self._transfers.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self.server.close()


@contextlib.contextmanager
def psrpc_failures() -> Iterator[None]:
    """A call operation's failure, sent to livekit-server as the psrpc error it expects."""
    try:
        yield
    except CallError as e:
        raise PsrpcError.from_failure(
            e.code, e.message, e.sip_status, e.sip_reason, worded=e.worded, context=e.context
        ) from e


async def _close_when_registered(
    call_id: str, registering: asyncio.Task[Registration[InternalTransferSIPParticipantRequest]]
) -> None:
    """Close a call's transfer topic once its registration is done (it may still be under way)."""
    try:
        await (await registering).close()
    except Exception as exc:
        log.warning("cluster: could not close the call's transfer topic: %r", exc, extra={"callID": call_id})
