"""Unauthenticated requests to the SIP API do not disturb calls: with a call up, 30 requests of 1 MiB without a
token in 20 s (from another process, as an attacker would send them) each get 401, and neither the agent in the
room nor the phone hears a drop-out; a 20 MB body gets a 4xx, not a 500."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from harness.audio import dominant_frequency, longest_gap_ms
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
CALLER_TONE, AGENT_TONE = 440.0, 1000.0
REQUESTS, SECONDS = 30, 20.0


async def post(url: str, body: Path, *headers: str) -> int:
    """POST a file with curl (a separate process); the HTTP status."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60", "-X", "POST"]
    for header in ("Content-Type: application/json", *headers):
        argv += ["-H", header]
    proc = await asyncio.create_subprocess_exec(
        *argv, "--data-binary", f"@{body}", url, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return int(out or b"0")


async def flood(url: str, body: Path) -> list[int]:
    """REQUESTS posts spread evenly over SECONDS, each waited for."""
    statuses = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(REQUESTS):
        await asyncio.sleep(max(0.0, start + n * SECONDS / REQUESTS - loop.time()))
        statuses.append(await post(url, body))
    return statuses


async def test_unauthenticated_megabytes_leave_the_call_untouched(
    tmp_path: Path,
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    megabyte = tmp_path / "1mib.json"  # ~115 000 numbers: a body that costs ~0.2 s of CPU to decode
    megabyte.write_bytes(json.dumps({"trunk": {"numbers": ["+1555"] * ((1 << 20) // 9 - 10)}}).encode())
    assert megabyte.stat().st_size <= 1 << 20
    huge = tmp_path / "20mb.json"
    huge.write_bytes(b'{"x": "' + b"y" * (20 << 20) + b'"}')
    url = f"{call_bridge.http_url}/twirp/livekit.SIP/CreateSIPInboundTrunk"

    await configure(bridge_api, direct("flood-room"))
    rtp_phone.play_tone(CALLER_TONE, dbfs=-20)
    call = asyncio.create_task(sipp_phone.call(limit=120))
    room = await wait_for_room(livekit_api, "flood-room")
    await wait_for_participant(livekit_api, room, IDENTITY)
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(AGENT_TONE, dbfs=-20)
        await agent.wait_heard(IDENTITY, seconds=1.0)
        await rtp_phone.sample(seconds=1.0)
        statuses, heard_by_agent, heard_by_phone = await asyncio.gather(
            flood(url, megabyte),
            agent.next_heard(IDENTITY, seconds=SECONDS, within=SECONDS + 30),
            rtp_phone.sample(seconds=SECONDS, within=SECONDS + 30),
        )
        assert 400 <= await post(url, huge, "Authorization: Bearer not.a.token") < 500
        assert 400 <= await post(url, huge) < 500
    await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
    (await call).check()

    assert statuses == [401] * REQUESTS
    assert abs(dominant_frequency(heard_by_agent, 48000) - CALLER_TONE) <= 5
    assert abs(dominant_frequency(heard_by_phone, RATE) - AGENT_TONE) <= 5
    assert longest_gap_ms(heard_by_agent, 48000) <= 100
    assert longest_gap_ms(heard_by_phone, RATE) <= 100
