"""Simultaneous inbound calls, each with audio both ways, leave no call, RTP port or task behind.

What this proves does not depend on the number of calls, so it uses as many as a loaded 2-core CI machine carries
with room to spare (CALLS): every call hears only its own caller and its own agent while the others are up, and
everything is released once they end. How many calls one bridge carries is a capacity figure, measured by
bench/bench_inbound_calls.py (20 calls by default, with the same per-call audio check); with 20 calls here the
test failed under its own load ("an agent saw no audio track within 30 s").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness.agent_pool import AgentPool
from harness.bridge import BridgeProcess
from harness.call_load import AGENT_TONE, caller_tone, phone_hears_agent, room_hears_caller
from harness.inbound_setup import configure, individual
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

pytestmark = pytest.mark.integration


CALLS = 8
WAVE = 4
AGENT_WORKERS = 2
"""Agents run in worker processes (harness.agent_pool): many rooms in one SDK process do not keep real time here."""


async def test_simultaneous_calls_with_audio_both_ways(
    tmp_path: Path, livekit_server: LiveKitServer, call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
) -> None:  # fmt: skip
    await configure(bridge_api, individual("load-"), krisp_enabled=False)
    phones = [RtpPhone() for _ in range(CALLS)]
    for i, phone in enumerate(phones):
        await phone.start()
        phone.play_tone(caller_tone(i))
    callers = [f"+1310555{1000 + i}" for i in range(CALLS)]
    sipps = [
        SippPhone(tmp_path / f"sipp{i}", call_bridge.sip_port, phone.port, from_=caller)
        for i, (phone, caller) in enumerate(zip(phones, callers, strict=True))
    ]
    calls: list[asyncio.Task[PhoneResult]] = []
    agents = AgentPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, AGENT_WORKERS)
    await agents.start()
    rooms: dict[int, str] = {}

    async def set_up(i: int) -> None:
        """Call i rings into its room, its agent joins and speaks, the call is answered with audio both ways."""
        # The phone stays on the line until the bridge hangs up, so a slow machine cannot end a call early.
        calls.append(asyncio.create_task(sipps[i].call(limit=300)))
        caller = callers[i]
        room = rooms[i] = await wait_for_room(livekit_api, f"load-_{caller}_", within=60)
        await wait_for_participant(livekit_api, room, f"sip_{caller}", within=60)
        await agents.join(room, "agent", tone=AGENT_TONE, listen=False)  # it listens only while a check samples
        await room_hears_caller(agents, room, f"sip_{caller}", i, CALLS)
        await phone_hears_agent(phones[i], i, CALLS)

    try:
        # The calls come in waves, as a busy trunk's do, so that the WebRTC handshakes do not all fall in the same
        # instant on a machine that also runs the callers, the agents and livekit-server.
        for wave in range(0, CALLS, WAVE):
            await asyncio.gather(*(set_up(i) for i in range(wave, min(wave + WAVE, CALLS))))
        assert call_bridge.metrics()["sipbridge_active_calls"] == CALLS
        # All up at once: every phone still hears its agent through the bridge. (Each room side was checked while
        # its call came up, the last wave's with all calls up.)
        await asyncio.gather(*(phone_hears_agent(phones[i], i, CALLS) for i in range(CALLS)))
        for i, caller in enumerate(callers):  # the bridge hangs up each call when its participant is removed
            who = api.RoomParticipantIdentity(room=rooms[i], identity=f"sip_{caller}")
            await livekit_api.room.remove_participant(who)
        results = await asyncio.gather(*calls)
    finally:
        await agents.close()
        for phone in phones:
            await phone.close()
    for result in results:
        result.check()
    deadline = asyncio.get_running_loop().time() + 60
    while call_bridge.metrics()["sipbridge_active_calls"] or call_bridge.metrics()["sipbridge_rtp_ports_in_use"]:
        assert asyncio.get_running_loop().time() < deadline, call_bridge.metrics()
        await asyncio.sleep(0.2)
    idle_tasks = call_bridge.metrics()["sipbridge_asyncio_tasks"]
    assert idle_tasks < 30, f"{idle_tasks:.0f} asyncio tasks still alive after every call ended"
