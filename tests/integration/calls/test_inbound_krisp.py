"""Krisp flag passthrough: a trunk's krisp_enabled turns on noise suppression of the caller's audio."""

from __future__ import annotations

import asyncio

import pytest
from harness.audio import rms_dbfs
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, individual
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("krisp", [False, True], ids=["krisp-off", "krisp-on"])
async def test_krisp_flag_suppresses_a_noisy_callers_noise(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
    krisp: bool,
) -> None:
    prefix = f"noisy-{'on' if krisp else 'off'}-"
    await configure(bridge_api, individual(prefix), krisp_enabled=krisp)
    rtp_phone.play_noise(dbfs=-25)
    call = asyncio.create_task(sipp_phone.call(hold_ms=6000))
    room = await wait_for_room(livekit_api, prefix)
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000)
        heard = await agent.wait_heard(f"sip_{CALLER}", seconds=4.0)
    (await call).check()
    level = rms_dbfs(heard[-2 * 48000 :])
    if krisp:
        # WebRTC's suppressor takes 8-14 dB off this noise (less when the loaded machine makes the room's copy
        # choppy); 6 dB, half the amplitude, is what a listener notices as suppression.
        assert level < -25 - 6, f"noise at {level:.1f} dBFS in the room despite krisp_enabled"
        assert "KRISP_ENABLED" in call_bridge.log_text()
    else:
        assert abs(level - -25) <= 3, f"noise at {level:.1f} dBFS, sent at -25"
