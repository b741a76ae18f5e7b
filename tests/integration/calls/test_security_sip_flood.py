"""A SIP flood during a call: 5 000 junk datagrams a second and 200 INVITEs a second that no trunk admits, for
10 s, from another process. The call in progress keeps its audio both ways without a drop-out, and the bridge
still answers OPTIONS afterwards."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from harness.audio import dominant_frequency, longest_gap_ms
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sip_client import RawSipClient
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
SECONDS = 10.0
FLOOD = Path(__file__).resolve().parents[2] / "harness" / "sip_flood.py"


async def flood(port: int) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(FLOOD), "--port", str(port), "--junk-rate", "5000", "--invite-rate", "200",
        "--seconds", str(SECONDS), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), SECONDS + 30)
    return out.decode().strip()


async def test_a_call_keeps_its_audio_through_a_sip_flood(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    await configure(bridge_api, direct("flood-call"))
    rtp_phone.play_tone(440, dbfs=-20)
    call = asyncio.create_task(sipp_phone.call(limit=120))
    room = await wait_for_room(livekit_api, "flood-call")
    await wait_for_participant(livekit_api, room, IDENTITY)
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000, dbfs=-20)
        await agent.wait_heard(IDENTITY, seconds=1.0)
        await rtp_phone.sample(seconds=1.0)
        sent, heard_by_agent, heard_by_phone = await asyncio.gather(
            flood(call_bridge.sip_port),
            agent.next_heard(IDENTITY, seconds=SECONDS, within=SECONDS + 30),
            rtp_phone.sample(seconds=SECONDS, within=SECONDS + 30),
        )
        async with RawSipClient(call_bridge.sip_port) as sip:
            options = sip.request("OPTIONS", f"sip:x@127.0.0.1:{call_bridge.sip_port}", to_user="x", from_user="p")
            assert (await sip.final(options)).status == 200
    await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
    (await call).check()

    assert sent.startswith("sent ")
    assert abs(dominant_frequency(heard_by_agent, 48000) - 440) <= 5
    assert abs(dominant_frequency(heard_by_phone, RATE) - 1000) <= 5
    assert longest_gap_ms(heard_by_agent, 48000) <= 100
    assert longest_gap_ms(heard_by_phone, RATE) <= 100
