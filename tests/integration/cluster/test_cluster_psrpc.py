"""Cluster mode: bridge nodes beside a livekit-server on Redis, driven by `lk` and livekit-api pointed at the server."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.audio import dominant_frequency
from harness.bridge import BridgeProcess
from harness.lk import LkRunner
from harness.participant import RATE, TestParticipant
from harness.processes import LiveKitServer, RedisServer
from harness.rooms import wait_for_call_status, wait_for_participant
from harness.rtp_phone import RATE as PHONE_RATE
from harness.rtp_phone import RtpPhone
from harness.sipapi import created_id
from harness.sipp_callee import SippCallee
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

TRUNK_NUMBER = "+15105550100"
CALLER = "+13105550100"
CALLEE = "+12135550100"


@pytest.fixture
def node(tmp_path: Path, livekit_server_redis: LiveKitServer, redis_server: RedisServer) -> Iterator[BridgeProcess]:
    with BridgeProcess(tmp_path / "node", livekit=livekit_server_redis, redis=redis_server, cluster=True) as bridge:
        yield bridge


async def clean_sip_config(server_api: api.LiveKitAPI) -> None:
    """The session's livekit-server keeps trunks and rules between tests: start each test from none."""
    for rule in (await server_api.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items:
        await server_api.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        )
    for trunks in (
        (await server_api.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items,
        (await server_api.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items,
    ):
        for trunk in trunks:
            await server_api.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))


def inbound_config(lk: LkRunner, server: LiveKitServer, room: str) -> str:
    """Through `lk` against livekit-server: an inbound trunk for TRUNK_NUMBER and a rule sending calls to `room`."""
    trunk = {"trunk": {"name": "cluster inbound", "numbers": [TRUNK_NUMBER]}}
    out = lk("sip", "inbound", "create", "trunk.json", target=server, input_files={"trunk.json": json.dumps(trunk)})
    rule = {"dispatch_rule": {"rule": {"dispatchRuleDirect": {"roomName": room}}, "name": room}}
    lk("sip", "dispatch", "create", "rule.json", target=server, input_files={"rule.json": json.dumps(rule)})
    return created_id(out.stdout)


async def logged(bridge: BridgeProcess, line: str, within: float = 30.0) -> None:
    """Until the bridge's log has `line` (the node writes it once what it says holds)."""
    async with asyncio.timeout(within):
        while line not in bridge.log_text():  # noqa: ASYNC110 (another process's log)
            await asyncio.sleep(0.1)


def no_psrpc_trouble(server: LiveKitServer) -> None:
    """livekit-server is up and its psrpc layer logged no panic and no error (a call that fails, busy say, is logged
    by its SIP service, and a request no node took is a psrpc WARN: both expected)."""
    assert server.process.running, "livekit-server died"
    trouble = server.process.grep_log(re.compile(r"panic|\tERROR\tlivekit\.psrpc"))
    assert not trouble, trouble[:5]


async def test_inbound_call_through_livekit_server_config(
    tmp_path: Path, lk: LkRunner, node: BridgeProcess, livekit_server_redis: LiveKitServer,
    server_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    """`lk sip inbound/dispatch create` against livekit-server; a call into the node lands in the room."""
    await clean_sip_config(server_api)
    server = livekit_server_redis
    trunk_id = inbound_config(lk, server, "cluster-in")
    rtp_phone.play_tone(600)
    sipp = SippPhone(tmp_path / "sipp", node.sip_port, rtp_phone.port, to=TRUNK_NUMBER, from_=CALLER)
    calling = asyncio.create_task(sipp.call(hold_ms=12000))
    async with TestParticipant(server.ws_url, server.api_key, server.api_secret, "cluster-in", "agent") as agent:
        await agent.publish_tone(1000)
        heard = await agent.wait_heard(f"sip_{CALLER}", 2.0, within=30)
        assert abs(dominant_frequency(heard[-RATE:], RATE) - 600) < 5
        at_phone = await rtp_phone.wait_heard(2.0)
        assert abs(dominant_frequency(at_phone[-PHONE_RATE:], PHONE_RATE) - 1000) < 5
        attributes = (await wait_for_call_status(server_api, "cluster-in", f"sip_{CALLER}", "active")).attributes
        assert attributes["sip.trunkID"] == trunk_id and attributes["sip.phoneNumber"] == CALLER
        assert attributes["sip.callID"].startswith("SCL_")
        (await calling).check()
    no_psrpc_trouble(server)


async def test_unknown_number_is_refused_by_the_stricter_admission(
    tmp_path: Path, lk: LkRunner, node: BridgeProcess, livekit_server_redis: LiveKitServer,
    server_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    await clean_sip_config(server_api)
    inbound_config(lk, livekit_server_redis, "anyone")  # the rule names no trunk: a catch-all rule
    sipp = SippPhone(tmp_path / "sipp", node.sip_port, rtp_phone.port, to="+19995550000", from_=CALLER)
    (await sipp.call_expecting(404)).check()


async def test_outbound_call_and_errors_through_livekit_server(
    tmp_path: Path, lk: LkRunner, node: BridgeProcess, livekit_server_redis: LiveKitServer,
    server_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    """`lk sip participant create` and livekit-api against livekit-server dial through the node; a busy callee is a
    Twirp error with sip_status_code 486."""
    await clean_sip_config(server_api)
    server = livekit_server_redis
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    rtp_phone.play_tone(600)
    trunk = {"trunk": {"name": "carrier", "address": callee.address, "numbers": [TRUNK_NUMBER]}}
    trunk_id = created_id(lk("sip", "outbound", "create", "trunk.json", target=server,
                             input_files={"trunk.json": json.dumps(trunk)}).stdout)  # fmt: skip
    participant = {"sip_trunk_id": trunk_id, "sip_call_to": CALLEE, "room_name": "cluster-out",
                   "participant_identity": "callee", "wait_until_answered": True}  # fmt: skip
    async with TestParticipant(server.ws_url, server.api_key, server.api_secret, "cluster-out", "agent") as agent:
        await agent.publish_tone(1000)
        answering = asyncio.create_task(callee.answer(ring_ms=500))
        out = await asyncio.to_thread(lk, "sip", "participant", "create", "p.json", target=server,
                                      input_files={"p.json": json.dumps(participant)}, timeout=60)  # fmt: skip
        assert "SCL_" in out.stdout
        heard = await agent.wait_heard("callee", 2.0, within=30)
        assert abs(dominant_frequency(heard[-RATE:], RATE) - 600) < 5
        attributes = (await wait_for_participant(server_api, "cluster-out", "callee")).attributes
        assert attributes["sip.callStatus"] == "active" and attributes["sip.trunkPhoneNumber"] == TRUNK_NUMBER
        await server_api.room.remove_participant(api.RoomParticipantIdentity(room="cluster-out", identity="callee"))
        (await answering).check()

    rejecting = asyncio.create_task(callee.reject("486 Busy Here"))
    with pytest.raises(api.TwirpError) as failure:
        await server_api.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="cluster-busy", wait_until_answered=True
            )
        )
    (await rejecting).check()
    assert failure.value.metadata["sip_status_code"] == "486"
    no_psrpc_trouble(server)


async def test_transfer_through_livekit_server(
    tmp_path: Path, lk: LkRunner, node: BridgeProcess, livekit_server_redis: LiveKitServer,
    server_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    await clean_sip_config(server_api)
    server = livekit_server_redis
    inbound_config(lk, server, "cluster-transfer")
    sipp = SippPhone(tmp_path / "sipp", node.sip_port, rtp_phone.port, to=TRUNK_NUMBER, from_=CALLER)
    calling = asyncio.create_task(sipp.call_and_get_transferred())
    async with TestParticipant(server.ws_url, server.api_key, server.api_secret, "cluster-transfer", "agent") as agent:
        await agent.publish_tone(1000)
        await agent.wait_heard(f"sip_{CALLER}", 0.5, within=30)
        # The node answers transfer_id, status, reason and sip_status; livekit-server v1.13.5 hands its own
        # client an empty response whatever the node says.
        await server_api.sip.transfer_sip_participant(
            api.TransferSIPParticipantRequest(
                room_name="cluster-transfer", participant_identity=f"sip_{CALLER}", transfer_to="sip:desk@pbx.test"
            )
        )
        result = await calling
    result.check()
    assert "Refer-To: <sip:desk@pbx.test>" in result.messages
    no_psrpc_trouble(server)


async def test_a_full_node_leaves_the_outbound_queue_until_it_has_room(
    tmp_path: Path, livekit_server_redis: LiveKitServer, redis_server: RedisServer, server_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    """With max_active_calls reached, livekit-server finds no node for a new call (unavailable); when the call
    ends the node takes calls again."""
    await clean_sip_config(server_api)
    server = livekit_server_redis
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk = api.SIPOutboundTrunkInfo(name="carrier", address=callee.address, numbers=[TRUNK_NUMBER])
    trunk_id = (await server_api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))).sip_trunk_id

    def request(room: str) -> api.CreateSIPParticipantRequest:
        return api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name=room, wait_until_answered=True
        )

    with BridgeProcess(tmp_path / "full", livekit=server, redis=redis_server, cluster=True,
                       extra={"max_active_calls": 1}) as full:  # fmt: skip
        answering = asyncio.create_task(callee.answer())
        await server_api.sip.create_sip_participant(request("full-1"))
        await logged(full, "cluster: taking no outbound calls")  # it has left the queue
        with pytest.raises(api.TwirpError) as refused:
            await server_api.sip.create_sip_participant(request("full-2"))
        assert refused.value.code == "unavailable"

        await server_api.room.remove_participant(api.RoomParticipantIdentity(room="full-1", identity=f"sip_{CALLEE}"))
        (await answering).check()
        await logged(full, "cluster: taking outbound calls again")  # back in the queue
        answering = asyncio.create_task(callee.answer())
        await server_api.sip.create_sip_participant(request("full-3"))
        await server_api.room.remove_participant(api.RoomParticipantIdentity(room="full-3", identity=f"sip_{CALLEE}"))
        (await answering).check()
    no_psrpc_trouble(server)
