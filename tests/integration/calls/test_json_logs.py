"""With ``logging.json: true`` every line the bridge writes is one JSON object, and a call's lines carry its IDs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration


async def test_every_line_is_json_and_call_lines_carry_the_call_id(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    extra = {"logging": {"level": "debug", "json": True}}
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra=extra) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct("json-logs"))
        rtp_phone.play_tone(440)
        sipp = SippPhone(tmp_path / "sipp", bridge.sip_port, rtp_phone.port)
        call = asyncio.create_task(sipp.call(hold_ms=3000))
        room = await wait_for_room(livekit_api, "json-logs")
        await wait_for_participant(livekit_api, room, f"sip_{CALLER}")
        async with TestParticipant(
            livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
        ) as agent:
            await agent.publish_tone(1000)
            (await call).check()
        text = bridge.log_text()
    lines = [line for line in text.splitlines()[1:] if line.strip()]  # the first line is the harness's command
    entries = [json.loads(line) for line in lines]  # each one parses, or this fails naming the line
    assert {"time", "level", "logger", "msg"} <= set(entries[0])
    call_lines = [e for e in entries if e["logger"].startswith("sipbridge.calls")]
    assert call_lines and all(e.get("callID", "").startswith("SCL_") for e in call_lines)
    joined = [e for e in call_lines if "joined room" in e["msg"]]
    assert joined and joined[0]["room"] == room and joined[0]["participant"] == f"sip_{CALLER}"
