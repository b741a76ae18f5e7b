"""An agent's room RPC to the SIP participant, as with LiveKit's Go service: lk.sip.GetRemoteHeaders returns the
caller's headers, lk.sip.EndCall hangs up with the agent's headers on the BYE."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api, rtc

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"


async def test_agent_reads_the_callers_headers_and_ends_the_call(
    tmp_path: Path,
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
) -> None:
    await configure(bridge_api, direct("rpc-room"))
    phone = SippPhone(
        tmp_path / "sipp", call_bridge.sip_port, rtp_phone.port, headers={"X-Customer-Id": "42", "X-Tier": "gold"}
    )
    call = asyncio.create_task(phone.call(hold_ms=None))  # waits for the bridge's BYE
    room = await wait_for_room(livekit_api, "rpc-room")
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000)
        await wait_for_call_status(livekit_api, room, IDENTITY, "active")
        everything = json.loads(await agent.perform_rpc(IDENTITY, "lk.sip.GetRemoteHeaders", "{}"))["headers"]
        assert everything["X-Customer-Id"] == "42" and everything["X-Tier"] == "gold"
        assert "Via" not in everything and "CSeq" not in everything and "Max-Forwards" not in everything
        only = await agent.perform_rpc(IDENTITY, "lk.sip.GetRemoteHeaders", json.dumps({"include": ["x-tier"]}))
        assert json.loads(only) == {"headers": {"X-Tier": "gold"}}
        with pytest.raises(rtc.RpcError) as refused:
            await agent.perform_rpc(IDENTITY, "lk.sip.GetRemoteHeaders", "not json")
        assert refused.value.code == 1500
        answer = await agent.perform_rpc(IDENTITY, "lk.sip.EndCall", json.dumps({"headers": {"X-Ended-By": "agent"}}))
        assert json.loads(answer) == {}
        result = await call
    result.check()  # the phone got the bridge's BYE and answered it
    bye = next(block for block in result.messages.split("-" * 47) if "received" in block and "BYE sip:" in block)
    assert "X-Ended-By: agent" in bye
