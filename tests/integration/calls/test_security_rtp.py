"""RTP injection and hijack against a running bridge: a stranger spraying valid RTP at the bridge's ports — before
the answer, while the caller talks, and while the caller is silent — is never heard in the room and never gets
the room's audio; the caller's own audio is untouched."""

from __future__ import annotations

import asyncio

import pytest
from harness.audio import band_db, dominant_frequency, longest_gap_ms, rms_dbfs
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.rtp_sprayer import RtpSprayer
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
CALLER_TONE, AGENT_TONE, STRANGER_TONE = 440.0, 1000.0, 1500.0
ROOM_RATE = 48000


async def test_a_stranger_spraying_rtp_is_never_heard_nor_answered(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    await configure(bridge_api, direct("rtp-guard-room"))
    stranger = RtpSprayer(STRANGER_TONE)
    first, last = call_bridge.rtp_ports
    await stranger.start(list(range(first + first % 2, last, 2)))  # every RTP port, before the call exists
    try:
        rtp_phone.play_tone(CALLER_TONE, dbfs=-20)
        call = asyncio.create_task(sipp_phone.call(limit=120))
        room = await wait_for_room(livekit_api, "rtp-guard-room")
        await wait_for_participant(livekit_api, room, IDENTITY)
        async with TestParticipant(
            livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
        ) as agent:
            await agent.publish_tone(AGENT_TONE, dbfs=-20)
            await agent.wait_heard(IDENTITY, seconds=1.0)  # answered, audio flowing
            assert rtp_phone.remote is not None
            stranger.targets = [rtp_phone.remote[1]]  # now aim at the call's own port only

            talking = await agent.next_heard(IDENTITY, seconds=3.0)
            phone_heard = await rtp_phone.sample(seconds=2.0)
            rtp_phone.muted = True  # the caller goes silent: once, a stranger took the stream over after 0.5 s
            silent = await agent.next_heard(IDENTITY, seconds=3.0)
            rtp_phone.muted = False
            await agent.next_heard(IDENTITY, seconds=0.5)
            again = await agent.next_heard(IDENTITY, seconds=2.0)
            phone_again = await rtp_phone.sample(seconds=1.0)

        await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
        (await call).check()  # the phone got the bridge's BYE
    finally:
        await stranger.close()

    assert stranger.sent > 1000 and stranger.received == 0  # not one packet of the room's audio went to it
    for heard in (talking, again):
        assert abs(dominant_frequency(heard, ROOM_RATE) - CALLER_TONE) <= 5
        assert abs(rms_dbfs(heard) - -20) <= 3
        assert band_db(heard, ROOM_RATE, CALLER_TONE) - band_db(heard, ROOM_RATE, STRANGER_TONE) >= 40
        assert longest_gap_ms(heard, ROOM_RATE) <= 100
    assert rms_dbfs(silent[ROOM_RATE // 2 :]) < -50  # silence, not the stranger's tone
    for heard in (phone_heard, phone_again):
        assert abs(dominant_frequency(heard, RATE) - AGENT_TONE) <= 5
