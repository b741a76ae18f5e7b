"""Nodes sharing one Redis keep their in-memory trunks and rules current: a trunk or rule created, changed or
deleted through livekit-server's API or another node decides the next INVITE on every node."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.digest_calls import cancel
from harness.inbound_setup import CALLER, TRUNK_NUMBER, direct
from harness.processes import LiveKitServer, RedisServer
from harness.sip_client import RawSipClient
from harness.sipapi import clear_sip_tables
from livekit import api

pytestmark = pytest.mark.integration


async def admits(node: BridgeProcess) -> bool:
    """Whether `node` lets a call to TRUNK_NUMBER in (it rings: cancelled at once) or refuses it."""
    async with RawSipClient(node.sip_port) as sip:
        invite = sip.invite(TRUNK_NUMBER, CALLER)
        response = await sip.first_after_trying(invite)
        if response.status >= 200:
            sip.ack(invite, response)
            return False
        await cancel(sip, invite)
        return True


async def until(node: BridgeProcess, wanted: bool, within: float = 30.0) -> None:
    """Wait (bounded) until `node` decides as `wanted`: each try is an INVITE and its answer."""
    deadline = time.monotonic() + within
    while await admits(node) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.workdir.name} never {'admitted' if wanted else 'refused'} the call")
        await asyncio.sleep(0.1)


async def test_changes_by_any_writer_reach_every_node(
    tmp_path: Path, redis_server: RedisServer, livekit_server_redis: LiveKitServer
) -> None:
    clear_sip_tables(redis_server)
    server = livekit_server_redis
    with (
        BridgeProcess(tmp_path / "a", livekit=server, redis=redis_server) as node_a,
        BridgeProcess(tmp_path / "b", livekit=server, redis=redis_server) as node_b,
    ):
        async with api_client(server) as via_server, api_client(node_a) as via_a:
            assert not await admits(node_b)
            trunk = await via_server.sip.create_inbound_trunk(
                api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(numbers=[TRUNK_NUMBER]))
            )
            await via_a.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=direct("prop-room")))
            await until(node_b, True)  # livekit-server's trunk and node A's rule, on node B
            await until(node_a, True)
            await via_server.sip.update_inbound_trunk_fields(trunk.sip_trunk_id, numbers=api.ListUpdate(set=["+1999"]))
            await until(node_b, False)  # an update elsewhere
            await via_a.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
            assert node_b.log_text().count("ignoring a record") == 0
