"""A phone call through a trunk and a dispatch rule made with `lk` lands in a LiveKit room, with audio both ways."""

from __future__ import annotations

import asyncio

import pytest
from harness import docs_examples as docs
from harness.audio import dominant_frequency, rms_dbfs
from harness.bridge import BridgeProcess
from harness.lk import LkRunner
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status, wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

CALLER = "+13105550100"
TRUNK_NUMBER = "+15105550100"
IDENTITY = f"sip_{CALLER}"


async def test_call_lands_in_room_with_audio_both_ways(
    lk: LkRunner,
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    trunk_out = lk(
        "sip",
        "inbound",
        "create",
        "t.json",
        target=call_bridge,
        input_files={"t.json": docs.INBOUND_TRUNK_ALLOWED_NUMBERS},
    )
    trunk_id = trunk_out.stdout.split("SIPTrunkID:")[1].split()[0]
    lk(
        "sip",
        "dispatch",
        "create",
        "r.json",
        target=call_bridge,
        input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT},
    )

    rtp_phone.play_tone(440, dbfs=-20)
    call = asyncio.create_task(sipp_phone.call(hold_ms=6000))
    room = await wait_for_room(livekit_api, "call-")
    assert room.startswith(f"call-_{CALLER}_")

    ringing = await wait_for_participant(livekit_api, room, IDENTITY)
    assert ringing.attributes["sip.callStatus"] == "ringing"

    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000, dbfs=-20)
        heard_by_agent = await agent.wait_heard(IDENTITY, seconds=3.0)
        heard_by_phone = await rtp_phone.wait_heard(seconds=3.0)

        participant = await wait_for_call_status(livekit_api, room, IDENTITY, "active")
        assert participant.kind == api.ParticipantInfo.Kind.SIP
        attributes = dict(participant.attributes)
        assert attributes["sip.phoneNumber"] == CALLER
        assert attributes["sip.trunkPhoneNumber"] == TRUNK_NUMBER
        assert attributes["sip.trunkID"] == trunk_id
        assert attributes["sip.callID"].startswith("SCL_")
        assert attributes["sip.ruleID"].startswith("SDR_")
        listed = lk("room", "participants", "list", room, target=livekit_server).stdout
        assert IDENTITY in listed

        dispatches = await livekit_api.agent_dispatch.list_dispatch(room)
        assert [d.agent_name for d in dispatches] == ["inbound-agent"]

    result = await call
    result.check()

    caller_audio = heard_by_agent[-48000:]  # the last second, well after the answer
    assert abs(dominant_frequency(caller_audio, 48000) - 440) <= 5
    assert abs(rms_dbfs(caller_audio) - -20) <= 3
    room_audio = heard_by_phone[-RATE:]
    assert abs(dominant_frequency(room_audio, RATE) - 1000) <= 5
    assert abs(rms_dbfs(room_audio) - -20) <= 3
