"""Two bridge nodes on one Redis share outbound calls; one dies (SIGKILL): its calls end and the other keeps its
calls and takes new ones; a SIGTERM drains a node without dropping its calls.

What this proves does not need many calls: CALLS at once (dialled in pairs, topped up until both nodes hold one,
which the shared queue's race decides), so that a loaded 2-core CI machine carries them with room to spare
(with 20 calls an agent's track publication timed out under the test's own load). Every wait is on an event with
a generous bound: fresh audio at a phone, a participant leaving, the node's own log line; the test's client and
agents retry what real ones retry (an `unavailable` dial, a timed-out join or publication).
"""

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

CALLS = 6
TOP_UP = 6
"""Further calls, one at a time, while every call so far went to the same node."""
AFTER_CRASH = 2
AGENT_TONE = 1000.0
DIAL_TIMEOUT = 150.0
DIAL_ATTEMPTS = 3
"""A loaded 2-core machine joins rooms slowly: an answered call may take longer than livekit-api's 32 s."""


def node(tmp_path: Path, name: str, server: LiveKitServer, redis: RedisServer, **extra: object) -> BridgeProcess:
    return BridgeProcess(tmp_path / name, livekit=server, redis=redis, cluster=True, extra=dict(extra))


async def hears_agent(phone: RtpPhone, within: float = 60.0) -> None:
    """The callee's phone hears the agent's tone in the next two seconds of audio it receives (so audio from now
    on, not from before a crash)."""
    deadline = asyncio.get_running_loop().time() + within
    margin = math.nan
    while asyncio.get_running_loop().time() < deadline:
        heard = await phone.sample(2.0, within=within)
        if rms_dbfs(heard) > -40:
            margin = tone_margin(heard, RATE, AGENT_TONE, [400.0, 600.0])
            if margin > 10:
                return
    raise AssertionError(f"phone on port {phone.port}: no agent tone (margin {margin:.0f} dB)")


async def left_room(server_api: api.LiveKitAPI, room: str, identity: str, within: float = 90.0) -> None:
    """Until `identity` is no longer in `room` (livekit-server drops a participant whose node died)."""
    async with asyncio.timeout(within):
        while True:
            listed = await server_api.room.list_participants(api.ListParticipantsRequest(room=room))
            if identity not in [p.identity for p in listed.participants]:
                return
            await asyncio.sleep(0.5)


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
        # livekit-server gives a node 1 s to claim a request; a node starved of CPU on a loaded 2-core machine can
        # miss that, and the caller gets `unavailable`, which clients retry after a pause.
        for attempt in range(DIAL_ATTEMPTS):
            try:
                info = await server_api.sip.create_sip_participant(request, timeout=DIAL_TIMEOUT)
                break
            except api.TwirpError as error:
                if error.code != "unavailable" or attempt == DIAL_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(1)
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
    calls = [Call(tmp_path, i) for i in range(CALLS + TOP_UP + AFTER_CRASH)]
    agents = AgentPool(server.ws_url, server.api_key, server.api_secret, workers=2)
    first = node(tmp_path, "node-a", server, redis_server)
    second = node(tmp_path, "node-b", server, redis_server)
    first.start()
    second.start()

    async def place(batch: list[Call]) -> None:
        for call in batch:  # each call's agent joins just before it, to spare the machine
            await call.prepare(server_api)
            await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)
        await asyncio.gather(*(call.dial(server_api) for call in batch))

    try:
        await agents.start()
        for pair in range(0, CALLS, 2):
            await place(calls[pair : pair + 2])
        placed = calls[:CALLS]
        for extra in calls[CALLS : CALLS + TOP_UP]:
            if any(c.on(first) for c in placed) and any(c.on(second) for c in placed):
                break
            await place([extra])
            placed.append(extra)
        on_first = [c for c in placed if c.on(first)]
        on_second = [c for c in placed if c.on(second)]
        assert len(on_first) + len(on_second) == len(placed)
        assert on_first and on_second, f"all calls went to one node ({len(on_first)} / {len(on_second)})"
        await asyncio.gather(*(hears_agent(c.phone) for c in placed))

        os.kill(first.process.pid, signal.SIGKILL)  # the node dies without a word
        # Its calls end: livekit-server drops their participants once the dead node's connections time out.
        await asyncio.gather(*(left_room(server_api, c.room, "callee") for c in on_first))
        await asyncio.gather(*(hears_agent(c.phone) for c in on_second))  # the survivor's calls go on
        for call in calls[-AFTER_CRASH:]:  # new calls go to the survivor
            await place([call])
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
        async with asyncio.timeout(30):  # the node has taken the signal and is draining
            while "draining: waiting for 2 call(s)" not in bridge.log_text():  # noqa: ASYNC110 (its log)
                await asyncio.sleep(0.1)
        await asyncio.gather(*(hears_agent(c.phone) for c in calls[:2]))  # the calls go on
        with pytest.raises(api.TwirpError) as refused:  # and no new call is taken
            await calls[2].dial(server_api)
        assert refused.value.code == "unavailable"
        assert bridge.process.running, "the node exited while its calls were up"

        for call in calls[:2]:  # the calls end; then the node exits by itself
            who = api.RoomParticipantIdentity(room=call.room, identity="callee")
            await server_api.room.remove_participant(who)
        async with asyncio.timeout(60):
            while bridge.process.running:  # noqa: ASYNC110 (another process)
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
