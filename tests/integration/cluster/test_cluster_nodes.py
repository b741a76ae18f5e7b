"""Two bridge nodes on one Redis share outbound calls; one dies (SIGKILL), the other keeps its calls and takes new
ones; a SIGTERM drains a node without dropping its calls."""

from __future__ import annotations

import asyncio
import math
import os
import signal
from pathlib import Path

import pytest
from harness.agent_pool import AgentPool
from harness.audio import rms_dbfs, tone_margin
from harness.bridge import BridgeProcess
from harness.processes import LiveKitServer, RedisServer
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_callee import SippCallee
from livekit import api

pytestmark = pytest.mark.integration

CALLS = 20
AGENT_TONE = 1000.0
DIAL_TIMEOUT = 150.0
DIAL_ATTEMPTS = 3
"""A loaded 2-core machine joins twenty rooms slowly: an answered call may take longer than livekit-api's 32 s."""


def node(tmp_path: Path, name: str, server: LiveKitServer, redis: RedisServer, **extra: object) -> BridgeProcess:
    return BridgeProcess(tmp_path / name, livekit=server, redis=redis, cluster=True, extra=dict(extra))


async def hears_agent(phone: RtpPhone, within: float = 30.0) -> None:
    """The callee's phone hears the agent's tone in its last two seconds."""
    deadline = asyncio.get_running_loop().time() + within
    margin = math.nan
    while asyncio.get_running_loop().time() < deadline:
        tail = phone.heard()[-2 * RATE :]
        if len(tail) == 2 * RATE and rms_dbfs(tail) > -40:
            margin = tone_margin(tail, RATE, AGENT_TONE, [400.0, 600.0])
            if margin > 10:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"phone on port {phone.port}: no agent tone (margin {margin:.0f} dB)")


class Call:
    """One outbound call's far end: an RTP phone, sipp answering on its own port, and a trunk pointing there."""

    def __init__(self, tmp_path: Path, index: int) -> None:
        self.index = index
        self.room = f"nodes-{index}"
        self.phone = RtpPhone()
        self.callee: SippCallee | None = None
        self.answering: asyncio.Task[object] | None = None
        self.trunk_id = ""
        self.lk_call_id = ""
        self.workdir = tmp_path / f"callee{index}"

    async def prepare(self, server_api: api.LiveKitAPI) -> None:
        await self.phone.start()
        self.phone.play_tone(600)
        self.callee = SippCallee(self.workdir, self.phone.port)
        trunk = api.SIPOutboundTrunkInfo(name=f"callee {self.index}", address=self.callee.address, numbers=["+1510"])
        created = await server_api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
        self.trunk_id = created.sip_trunk_id
        self.answering = asyncio.create_task(self.callee.answer(ring_ms=100, limit=300))

    async def dial(self, server_api: api.LiveKitAPI) -> None:
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=self.trunk_id, sip_call_to=f"+1213555{1000 + self.index}", room_name=self.room,
            participant_identity="callee", wait_until_answered=True,
        )  # fmt: skip
        # livekit-server gives a node 1 s to claim a request; a node starved of CPU on this 2-core machine (20 calls,
        # 20 agents, two nodes) can miss that, and the caller gets `unavailable`, which clients retry.
        for attempt in range(DIAL_ATTEMPTS):
            try:
                info = await server_api.sip.create_sip_participant(request, timeout=DIAL_TIMEOUT)
                break
            except api.TwirpError as error:
                if error.code != "unavailable" or attempt == DIAL_ATTEMPTS - 1:
                    raise
        self.lk_call_id = info.sip_call_id

    def on(self, bridge: BridgeProcess) -> bool:
        return f"callID={self.lk_call_id}" in bridge.log_text()

    async def close(self) -> None:
        if self.answering is not None:
            self.answering.cancel()
            await asyncio.gather(self.answering, return_exceptions=True)
        await self.phone.close()


async def test_two_nodes_share_calls_and_survive_a_crash(
    tmp_path: Path, livekit_server_redis: LiveKitServer, redis_server: RedisServer, server_api: api.LiveKitAPI
) -> None:
    server = livekit_server_redis
    calls = [Call(tmp_path, i) for i in range(CALLS + 3)]
    agents = AgentPool(server.ws_url, server.api_key, server.api_secret, workers=4)
    first = node(tmp_path, "node-a", server, redis_server)
    second = node(tmp_path, "node-b", server, redis_server)
    first.start()
    second.start()
    try:
        await agents.start()
        for call in calls:
            await call.prepare(server_api)
        for batch in range(0, CALLS, 2):  # each call's agent joins just before it, to spare the machine
            for call in calls[batch : batch + 2]:
                await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)
            await asyncio.gather(*(call.dial(server_api) for call in calls[batch : batch + 2]))
        placed = calls[:CALLS]
        on_first = [c for c in placed if c.on(first)]
        on_second = [c for c in placed if c.on(second)]
        assert len(on_first) + len(on_second) == CALLS
        assert on_first and on_second, f"all calls went to one node ({len(on_first)} / {len(on_second)})"
        await asyncio.gather(*(hears_agent(c.phone) for c in placed))

        os.kill(first.process.pid, signal.SIGKILL)  # the node dies without a word
        await asyncio.sleep(3)
        await asyncio.gather(*(hears_agent(c.phone, within=15) for c in on_second))  # fresh audio after the crash
        for call in calls[CALLS:]:  # new calls go to the survivor
            await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)
            await call.dial(server_api)
            assert call.on(second)
            await hears_agent(call.phone)
    finally:
        await agents.close()
        for call in calls:
            await call.close()
        first.stop()
        second.stop()


async def test_sigterm_drains_a_node_without_dropping_its_calls(
    tmp_path: Path, livekit_server_redis: LiveKitServer, redis_server: RedisServer, server_api: api.LiveKitAPI
) -> None:
    server = livekit_server_redis
    calls = [Call(tmp_path, 100 + i) for i in range(3)]
    agents = AgentPool(server.ws_url, server.api_key, server.api_secret, workers=1)
    bridge = node(tmp_path, "draining", server, redis_server, drain_timeout=60)
    bridge.start()
    try:
        await agents.start()
        for call in calls:
            await call.prepare(server_api)
            await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)
        for call in calls[:2]:
            await call.dial(server_api)
            await hears_agent(call.phone)

        os.kill(bridge.process.pid, signal.SIGTERM)
        await asyncio.sleep(2)
        assert bridge.process.running, "the node exited while its calls were up"
        await asyncio.gather(*(hears_agent(c.phone, within=10) for c in calls[:2]))  # the calls go on
        with pytest.raises(api.TwirpError) as refused:  # and no new call is taken
            await calls[2].dial(server_api)
        assert refused.value.code == "unavailable"

        for call in calls[:2]:  # the calls end; then the node exits by itself
            who = api.RoomParticipantIdentity(room=call.room, identity="callee")
            await server_api.room.remove_participant(who)
        for _ in range(100):
            if not bridge.process.running:
                break
            await asyncio.sleep(0.2)
        assert bridge.process.returncode == 0
        for call in calls[:2]:
            assert call.answering is not None
            result = await call.answering
            result.check()  # type: ignore[attr-defined]
    finally:
        await agents.close()
        for call in calls:
            await call.close()
        bridge.stop()
