"""Interop with a real livekit-server on Redis: it calls our SIPInternal server, we call its IOInfo server.

Users drive livekit-server with `lk` and livekit-api exactly as LiveKit's docs show; what they get back (Twirp
results and errors) must be what a Go SIP node behind livekit-server would give them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis
from harness.bridge import api_client
from harness.lk import LkRunner
from harness.participant import TestParticipant
from harness.processes import LiveKitServer, RedisServer
from harness.sipapi import clear_sip_tables, created_id
from livekit import api
from livekit.protocol.sip import SIPTransferStatus, SIPUri

from sipbridge.psrpc import Incoming, IOInfoClient, PsrpcError, RedisBus, SIPInternalServer
from sipbridge.psrpc.rpc import (
    EvaluateSIPDispatchRulesRequest,
    GetSIPTrunkAuthenticationRequest,
    InternalCreateSIPParticipantRequest,
    InternalCreateSIPParticipantResponse,
    InternalTransferSIPParticipantRequest,
    InternalTransferSIPParticipantResponse,
    RecordCallContextRequest,
    SIPCall,
    SIPDispatchResult,
    UpdateSIPCallStateRequest,
)
from sipbridge.psrpc.wire import Msg

pytestmark = pytest.mark.integration

TRUNK_NUMBER = "+15105550100"
CALLER = "+13105550100"
OUTBOUND_TRUNK = json.dumps(
    {
        "trunk": {
            "name": "psrpc outbound",
            "address": "sip.example.com",
            "numbers": [TRUNK_NUMBER],
            "authUsername": "out-user",
            "authPassword": "out-pass",
        }
    }
)
# What livekit-server logs when psrpc itself goes wrong (Go psrpc's own messages), or when it crashes.
PSRPC_TROUBLE = re.compile(
    r"panic|failed to handle request|redis (receive|write) message failed|reconciliation failed|pipeline execution"
)


@pytest.fixture
def server(livekit_server_redis: LiveKitServer, redis_server: RedisServer) -> Iterator[LiveKitServer]:
    """livekit-server on the shared Redis with no SIP trunks or rules; its log must stay free of psrpc trouble."""
    clear_sip_tables(redis_server)
    lines_before = len(livekit_server_redis.process.log_text().splitlines())
    yield livekit_server_redis
    assert livekit_server_redis.process.running, livekit_server_redis.process.log_tail()
    new_lines = livekit_server_redis.process.log_text().splitlines()[lines_before:]
    assert not [line for line in new_lines if PSRPC_TROUBLE.search(line)]


@pytest.fixture
async def sip_internal(new_bus: Callable[[], Awaitable[RedisBus]]) -> AsyncIterator[SIPInternalServer]:
    sip = SIPInternalServer(await new_bus())
    yield sip
    await sip.close()


@pytest.fixture
async def io_info(new_bus: Callable[[], Awaitable[RedisBus]]) -> AsyncIterator[IOInfoClient]:
    client = IOInfoClient(await new_bus())
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def livekit_api(server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    async with api_client(server) as client:
        yield client


class OutboundCalls:
    """A CreateSIPParticipant handler: records requests; callee "+1486..." is busy, others answer."""

    def __init__(self) -> None:
        self.requests: list[InternalCreateSIPParticipantRequest] = []

    async def __call__(
        self, request: InternalCreateSIPParticipantRequest, incoming: Incoming
    ) -> InternalCreateSIPParticipantResponse:
        self.requests.append(request)
        if request.call_to.startswith("+1486"):
            raise PsrpcError.from_sip_status(486, "Busy Here")
        return InternalCreateSIPParticipantResponse(
            participant_id="PA_psrpcTest01", participant_identity=request.participant_identity
        )


async def run_lk(lk: LkRunner, server: LiveKitServer, *args: str, **kwargs: object) -> str:
    """lk against livekit-server, off the event loop (our handlers run on it); returns stdout."""
    result = await asyncio.to_thread(lk, *args, target=server, **kwargs)  # type: ignore[arg-type]
    return result.stdout


async def test_lk_sip_participant_create_reaches_our_node(
    lk: LkRunner, server: LiveKitServer, sip_internal: SIPInternalServer
) -> None:
    calls = OutboundCalls()
    await sip_internal.register_create_sip_participant(calls)
    trunk = created_id(
        await run_lk(lk, server, "sip", "outbound", "create", "t.json", input_files={"t.json": OUTBOUND_TRUNK})
    )

    out = await run_lk(
        lk, server, "sip", "participant", "create",
        "--trunk", trunk, "--call", "+15105550199", "--room", "psrpc-room", "--identity", "callee",
    )  # fmt: skip

    call_id = re.search(r"SIPCallID: (SCL_\w+)", out)
    assert call_id, out
    assert "ParticipantID: PA_psrpcTest01" in out and "ParticipantIdentity: callee" in out
    [request] = calls.requests
    assert (request.address, request.number, request.call_to) == ("sip.example.com", TRUNK_NUMBER, "+15105550199")
    assert (request.username, request.password) == ("out-user", "out-pass")
    assert (request.room_name, request.participant_identity) == ("psrpc-room", "callee")
    assert (request.sip_call_id, request.sip_trunk_id) == (call_id.group(1), trunk)
    assert dict(request.participant_attributes) == {
        "sip.callID": call_id.group(1),
        "sip.trunkID": trunk,
        "sip.phoneNumber": "+15105550199",
        "sip.hostname": "sip.example.com",
        "sip.trunkPhoneNumber": TRUNK_NUMBER,
    }
    assert (request.token, request.ws_url) == ("", "")  # the node mints its own token

    busy = await asyncio.to_thread(
        lk, "sip", "participant", "create", "--trunk", trunk, "--call", "+14865550100", "--room", "psrpc-room",
        target=server, check=False,
    )  # fmt: skip
    assert busy.returncode != 0
    assert "sip status: 486: Busy Here" in busy.stderr + busy.stdout


async def test_livekit_api_gets_the_answer_and_the_sip_status_of_a_busy_callee(
    lk: LkRunner, server: LiveKitServer, sip_internal: SIPInternalServer, livekit_api: api.LiveKitAPI
) -> None:
    calls = OutboundCalls()
    await sip_internal.register_create_sip_participant(calls)
    trunk = created_id(
        await run_lk(lk, server, "sip", "outbound", "create", "t.json", input_files={"t.json": OUTBOUND_TRUNK})
    )

    info = await livekit_api.sip.create_sip_participant(
        api.CreateSIPParticipantRequest(sip_trunk_id=trunk, sip_call_to="+15105550199", room_name="psrpc-api")
    )
    assert info.participant_id == "PA_psrpcTest01"
    assert info.participant_identity == "sip_+15105550199"  # livekit-server's default identity
    assert info.room_name == "psrpc-api"
    assert info.sip_call_id == calls.requests[0].sip_call_id

    with pytest.raises(api.TwirpError) as busy:
        await livekit_api.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(sip_trunk_id=trunk, sip_call_to="+14865550100", room_name="psrpc-api")
        )
    assert (busy.value.code, busy.value.status) == ("resource_exhausted", 429)
    assert busy.value.metadata["sip_status_code"] == "486"
    assert busy.value.metadata["sip_status"] == "Busy Here"
    assert busy.value.message == "twirp error unknown: sip status: 486: Busy Here"  # livekit-server's wording
    # What livekit-server puts in the meta is exactly what our error says it would.
    assert busy.value.metadata == PsrpcError.from_sip_status(486, "Busy Here").twirp_meta()


async def test_without_a_node_in_the_queue_the_caller_gets_unavailable(
    lk: LkRunner, server: LiveKitServer, sip_internal: SIPInternalServer, livekit_api: api.LiveKitAPI
) -> None:
    calls = OutboundCalls()
    registration = await sip_internal.register_create_sip_participant(calls)
    await registration.pause()  # a node at capacity
    trunk = created_id(
        await run_lk(lk, server, "sip", "outbound", "create", "t.json", input_files={"t.json": OUTBOUND_TRUNK})
    )
    request = api.CreateSIPParticipantRequest(sip_trunk_id=trunk, sip_call_to="+15105550199", room_name="psrpc-full")

    with pytest.raises(api.TwirpError) as full:
        await livekit_api.sip.create_sip_participant(request)
    assert (full.value.code, full.value.status) == ("unavailable", 503)
    assert "no response from servers" in full.value.message
    assert not calls.requests

    await registration.resume()
    assert (await livekit_api.sip.create_sip_participant(request)).participant_id == "PA_psrpcTest01"


async def test_transfer_reaches_the_call_while_its_topic_is_registered(
    server: LiveKitServer, sip_internal: SIPInternalServer, livekit_api: api.LiveKitAPI, tmp_room: str
) -> None:
    call_id = "SCL_psrpcXfer001"
    transfers: list[InternalTransferSIPParticipantRequest] = []

    async def transfer(
        request: InternalTransferSIPParticipantRequest, incoming: Incoming
    ) -> InternalTransferSIPParticipantResponse:
        transfers.append(request)
        if request.transfer_to == "tel:+16035550100":
            raise PsrpcError.from_sip_status(603, "Decline")
        return InternalTransferSIPParticipantResponse(status=SIPTransferStatus.STS_TRANSFER_SUCCESSFUL)

    registration = await sip_internal.register_transfer_sip_participant(call_id, transfer)
    phone = TestParticipant(
        server.ws_url, server.api_key, server.api_secret, tmp_room, "phone", attributes={"sip.callID": call_id}
    )
    async with phone:
        request = api.TransferSIPParticipantRequest(
            room_name=tmp_room, participant_identity="phone", transfer_to="tel:+15105550123"
        )
        await livekit_api.sip.transfer_sip_participant(request)
        [received] = transfers
        assert (received.sip_call_id, received.transfer_to) == (call_id, "tel:+15105550123")
        assert received.ringing_timeout.seconds > 0  # livekit-server sends its deadline

        with pytest.raises(api.TwirpError) as declined:
            await livekit_api.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=tmp_room, participant_identity="phone", transfer_to="tel:+16035550100"
                )
            )
        assert (declined.value.code, declined.value.metadata["sip_status_code"]) == ("permission_denied", "603")

        await registration.close()  # the call ended
        with pytest.raises(api.TwirpError) as gone:
            await livekit_api.sip.transfer_sip_participant(request)
        assert gone.value.code == "unavailable"
    assert len(transfers) == 2


def inbound_call(called: str = TRUNK_NUMBER, source_ip: str = "127.0.0.1") -> SIPCall:
    return SIPCall(
        lk_call_id="SCL_psrpcInbound1",
        source_ip=source_ip,
        address=SIPUri(user=called, host="sip.bridge.example"),
        to=SIPUri(user=called, host="sip.bridge.example"),
        sip_call_id="a84b4c76e66710@pc33.example.com",
        **{"from": SIPUri(user=CALLER, host="carrier.example.com")},
    )


async def test_io_info_authenticates_and_dispatches_an_inbound_call(
    lk: LkRunner, server: LiveKitServer, io_info: IOInfoClient
) -> None:
    trunk_file = {
        "trunk": {"name": "psrpc in", "numbers": [TRUNK_NUMBER], "authUsername": "in-user", "authPassword": "in-pass"}
    }
    trunk = created_id(
        await run_lk(lk, server, "sip", "inbound", "create", "t.json", input_files={"t.json": json.dumps(trunk_file)})
    )
    rule_file = {
        "dispatch_rule": {
            "trunk_ids": [trunk],
            "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}},
            "attributes": {"team": "support"},
            "roomConfig": {"agents": [{"agentName": "inbound-agent"}]},
            "name": "psrpc rule",
        }
    }
    rule = created_id(
        await run_lk(lk, server, "sip", "dispatch", "create", "r.json", input_files={"r.json": json.dumps(rule_file)})
    )
    call = inbound_call()

    auth = await io_info.get_sip_trunk_authentication(GetSIPTrunkAuthenticationRequest(call=call))
    assert (auth.username, auth.password, auth.sip_trunk_id, auth.drop) == ("in-user", "in-pass", trunk, False)

    dispatch = await io_info.evaluate_sip_dispatch_rules(EvaluateSIPDispatchRulesRequest(sip_trunk_id=trunk, call=call))
    assert dispatch.result == SIPDispatchResult.ACCEPT
    assert (dispatch.sip_trunk_id, dispatch.sip_dispatch_rule_id) == (trunk, rule)
    assert dispatch.room_name.startswith("call-") and CALLER in dispatch.room_name  # call-_<caller>_<random>
    assert dispatch.participant_identity == f"sip_{CALLER}"
    assert dispatch.participant_attributes["team"] == "support"
    assert [agent.agent_name for agent in dispatch.room_config.agents] == ["inbound-agent"]
    assert dispatch.participant_attributes["sip.callID"] == call.lk_call_id
    assert dispatch.participant_attributes["sip.trunkID"] == trunk
    assert dispatch.participant_attributes["sip.phoneNumber"] == CALLER
    assert (dispatch.token, dispatch.ws_url) == ("", "")  # the node mints the token

    # livekit-server answers these with Empty (it records nothing in OSS).
    assert await io_info.update_sip_call_state(UpdateSIPCallStateRequest()) is None
    assert await io_info.record_call_context(RecordCallContextRequest()) is None


async def test_io_info_for_a_call_no_trunk_or_rule_takes(server: LiveKitServer, io_info: IOInfoClient) -> None:
    call = inbound_call(called="+19995550100")
    auth = await io_info.get_sip_trunk_authentication(GetSIPTrunkAuthenticationRequest(call=call))
    assert auth == type(auth)()  # no trunk: no credentials asked

    dispatch = await io_info.evaluate_sip_dispatch_rules(EvaluateSIPDispatchRulesRequest(call=call))
    assert dispatch.result == SIPDispatchResult.DROP

    with pytest.raises(PsrpcError) as bad_address:
        await io_info.get_sip_trunk_authentication(
            GetSIPTrunkAuthenticationRequest(call=inbound_call(source_ip="not-an-address"))
        )
    assert bad_address.value.code == "unknown"  # livekit-server fails it with a Twirp error psrpc cannot classify
    assert "not-an-address" in bad_address.value.message


async def test_io_info_never_sends_what_crashes_livekit_server(server: LiveKitServer, io_info: IOInfoClient) -> None:
    # livekit-server v1.13.5 reads call.from and call.to without checking: a call without them must still be safe.
    bare = SIPCall(lk_call_id="SCL_psrpcBare0001", source_ip="127.0.0.1")
    await io_info.get_sip_trunk_authentication(GetSIPTrunkAuthenticationRequest(call=bare))
    assert (await io_info.evaluate_sip_dispatch_rules(EvaluateSIPDispatchRulesRequest(call=bare))).result == (
        SIPDispatchResult.DROP
    )


async def test_every_message_on_the_wire_is_the_type_its_channel_carries(
    lk: LkRunner,
    server: LiveKitServer,
    redis_server: RedisServer,
    sip_internal: SIPInternalServer,
    io_info: IOInfoClient,
    livekit_api: api.LiveKitAPI,
) -> None:
    # A Go peer crashes on a message of the wrong type; watch everything both sides publish during a few calls.
    expected = {
        "REQ": "internal.Request",
        "RCLAIM": "internal.ClaimResponse",
        "CLAIM": "internal.ClaimRequest",
        "RES": "internal.Response",
    }
    watcher = aioredis.Redis(host=redis_server.host, port=redis_server.port)
    pubsub = watcher.pubsub()
    await pubsub.psubscribe("SIPInternal|*", "IOInfo|*")
    try:
        await sip_internal.register_create_sip_participant(OutboundCalls())
        trunk = created_id(
            await run_lk(lk, server, "sip", "outbound", "create", "t.json", input_files={"t.json": OUTBOUND_TRUNK})
        )
        for callee in ("+15105550199", "+14865550100"):
            with contextlib.suppress(api.TwirpError):
                await livekit_api.sip.create_sip_participant(
                    api.CreateSIPParticipantRequest(sip_trunk_id=trunk, sip_call_to=callee, room_name="psrpc-wire")
                )
        await io_info.get_sip_trunk_authentication(GetSIPTrunkAuthenticationRequest(call=inbound_call()))

        seen: list[tuple[str, str]] = []
        while (item := await pubsub.get_message(timeout=0.5)) is not None:
            if item["type"] == "pmessage":
                channel = item["channel"].decode()
                seen.append((channel.rsplit("|", 1)[1], Msg.FromString(item["data"]).type_url))
    finally:
        await pubsub.aclose()
        await watcher.aclose()

    assert {kind for kind, _ in seen} == set(expected)  # requests, claims, choices and responses all went by
    for kind, type_url in seen:
        assert type_url == "type.googleapis.com/" + expected[kind]
