"""Inbound call features against real peers: DTMF, PIN, callee rule, digest auth, caller filtering, hidden
numbers, header mapping, and every way a call ends (each releasing its RTP port, room connection and tasks).

A call limit is shown by the bridge hanging up with that limit's reason, not by how soon it did (a loaded machine
only makes it later); a room-side ending starts once the participant's sip.callStatus says the call is up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from google.protobuf.duration_pb2 import Duration
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import CALLER, TRUNK_NUMBER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status, wait_for_participant, wait_for_room, wait_gone
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"


def agent_in(server: LiveKitServer, room: str, identity: str = "agent") -> TestParticipant:
    return TestParticipant(server.ws_url, server.api_key, server.api_secret, room, identity)


async def wait_until(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.1)


async def assert_released(bridge: BridgeProcess, livekit_api: api.LiveKitAPI, room: str) -> None:
    """The call left nothing behind: no call, no RTP port, no participant in the room, tasks back to idle."""
    await wait_until(lambda: bridge.metrics()["sipbridge_active_calls"] == 0, "the call is over")
    await wait_until(lambda: bridge.metrics()["sipbridge_rtp_ports_in_use"] == 0, "the RTP port is released")
    await wait_gone(livekit_api, room, IDENTITY)


async def test_dtmf_both_ways(
    livekit_server: LiveKitServer,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    await configure(bridge_api, direct("dtmf-room"))
    call = asyncio.create_task(sipp_phone.call(hold_ms=8000))
    room = await wait_for_room(livekit_api, "dtmf-room")
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        await rtp_phone.wait_heard(0.5)
        for digit in "1*9#":
            rtp_phone.send_dtmf(digit)
        received = await agent.wait_dtmf(4)
        assert [(d.digit, d.code) for d in received] == [("1", 1), ("*", 10), ("9", 9), ("#", 11)]
        assert {d.sender_identity for d in received} == {IDENTITY}
        await agent.publish_dtmf(5, "5")
        await agent.publish_dtmf(11, "#")
        await wait_until(lambda: rtp_phone.digits == ["5", "#"], f"digits at the phone, got {rtp_phone.digits}")
    (await call).check()


@pytest.mark.parametrize(("pin", "admitted"), [("12345", True), ("999", False)])
async def test_direct_rule_with_pin(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
    pin: str,
    admitted: bool,
) -> None:
    room_name = f"safe-room-{pin}"
    await configure(bridge_api, direct(room_name, pin="12345"))
    rtp_phone.play_tone(440)
    # Admitted: the caller hangs up after a while; refused: the bridge hangs up after the prompt.
    call = asyncio.create_task(sipp_phone.call(hold_ms=15000 if admitted else None))
    prompt = await rtp_phone.wait_heard(1.0)  # the call is answered at once, the prompt plays
    assert prompt.std() > 100
    for digit in pin + "#":
        rtp_phone.send_dtmf(digit)
    if admitted:
        room = await wait_for_room(livekit_api, room_name)
        participant = await wait_for_participant(livekit_api, room, IDENTITY)
        assert participant.attributes["sip.callStatus"] == "active"
        async with agent_in(livekit_server, room) as agent:
            heard = await agent.wait_heard(IDENTITY, 2.0)
            assert heard[-24000:].std() > 300  # the caller's tone reaches the room
    (await call).check()
    if not admitted:
        rooms = await livekit_api.room.list_rooms(api.ListRoomsRequest())
        assert room_name not in [r.name for r in rooms.rooms]
        assert "PIN refused" in call_bridge.log_text()


async def test_callee_rule(
    livekit_server: LiveKitServer, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, sipp_phone: SippPhone
) -> None:
    rule = api.SIPDispatchRule(dispatch_rule_callee=api.SIPDispatchRuleCallee(room_prefix="number-"))
    await configure(bridge_api, api.SIPDispatchRuleInfo(rule=rule))
    call = asyncio.create_task(sipp_phone.call(hold_ms=2000))
    room = await wait_for_room(livekit_api, "number-")
    assert room == f"number-_{TRUNK_NUMBER}"  # LiveKit joins prefix and number with "_"
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        (await call).check()


@pytest.mark.parametrize(("password", "answered"), [("pass", True), ("wrong", False)])
async def test_trunk_with_digest_credentials(
    livekit_server: LiveKitServer,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    sipp_phone: SippPhone,
    password: str,
    answered: bool,
) -> None:
    await configure(bridge_api, direct("auth-room"), auth_username="user", auth_password="pass")
    if not answered:
        (await sipp_phone.call_expecting(403, auth=("user", password))).check()
        return
    call = asyncio.create_task(sipp_phone.call(hold_ms=2000, auth=("user", password)))
    room = await wait_for_room(livekit_api, "auth-room")
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        result = await call
    result.check()
    assert "401" in result.messages


async def test_allowed_numbers_trunk_rejects_a_stranger(
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    await configure(bridge_api, direct("open-room"), allowed_numbers=[CALLER])
    stranger = SippPhone(
        tmp_path_factory.mktemp("stranger"), call_bridge.sip_port, rtp_phone.port, from_="+19995550123"
    )
    result = await stranger.call_expecting(404)
    result.check()
    assert "Reason: SIP;cause=404" in result.messages


async def test_hide_inbound_port_drops_strangers_silently(
    tmp_path_factory: pytest.TempPathFactory, livekit_server: LiveKitServer, rtp_phone: RtpPhone
) -> None:
    workdir = tmp_path_factory.mktemp("hidden")
    with BridgeProcess(workdir / "bridge", livekit=livekit_server, extra={"hide_inbound_port": True}) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct("open-room"), allowed_numbers=[CALLER])
        stranger = SippPhone(workdir / "sipp", bridge.sip_port, rtp_phone.port, from_="+19995550123")
        result = await stranger.call_unanswered(limit=6)
        assert result.returncode != 0
        assert "INVITE" in result.messages and "message received" not in result.messages  # not even 100 Trying


async def test_hide_phone_number_and_header_attributes(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    await configure(
        bridge_api,
        direct("private-room", hide_phone_number=True),
        headers_to_attributes={"X-Customer-Id": "customer.id"},
        include_headers=api.SIPHeaderOptions.SIP_X_HEADERS,
    )
    phone = SippPhone(
        tmp_path_factory.mktemp("sipp"), call_bridge.sip_port, rtp_phone.port, headers={"X-Customer-Id": "42"}
    )
    call = asyncio.create_task(phone.call(hold_ms=2000))
    room = await wait_for_room(livekit_api, "private-room")
    deadline = time.monotonic() + 20
    while True:
        listed = await livekit_api.room.list_participants(api.ListParticipantsRequest(room=room))
        if listed.participants or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    (participant,) = listed.participants
    everything = " ".join([participant.identity, participant.name, *participant.attributes.values()])
    assert "3105550100" not in everything and "13105550100" not in everything
    assert participant.attributes["customer.id"] == "42"
    assert participant.attributes["sip.h.x-customer-id"] == "42"
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        (await call).check()


@pytest.mark.parametrize("how", ["participant_removed", "room_deleted"])
async def test_room_side_ending_hangs_up_the_phone(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    sipp_phone: SippPhone,
    how: str,
) -> None:
    await configure(bridge_api, direct(f"end-{how}"))
    call = asyncio.create_task(sipp_phone.call(hold_ms=None))  # waits for the bridge's BYE
    room = await wait_for_room(livekit_api, f"end-{how}")
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        await wait_for_call_status(livekit_api, room, IDENTITY, "active")  # answered and acknowledged
        await wait_until(lambda: call_bridge.metrics()["sipbridge_active_calls"] == 1, "call active")
        if how == "participant_removed":
            await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
        else:
            await livekit_api.room.delete_room(api.DeleteRoomRequest(room=room))
        (await call).check()  # the phone got a BYE and answered it
    await assert_released(call_bridge, livekit_api, room)


async def test_caller_cancels_while_ringing(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, sipp_phone: SippPhone
) -> None:
    await configure(bridge_api, direct("cancel-room"))
    call = asyncio.create_task(sipp_phone.call_and_cancel(after_ms=3000))
    room = await wait_for_room(livekit_api, "cancel-room")
    ringing = await wait_for_participant(livekit_api, room, IDENTITY)
    assert ringing.attributes["sip.callStatus"] == "ringing"
    (await call).check()
    await assert_released(call_bridge, livekit_api, room)


async def test_ringing_timeout(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, sipp_phone: SippPhone
) -> None:
    await configure(bridge_api, direct("nobody-room"), ringing_timeout=Duration(seconds=2))
    result = await sipp_phone.call_expecting(480)
    result.check()
    await assert_released(call_bridge, livekit_api, "nobody-room")


@pytest.mark.parametrize("limit", ["max_call_duration", "media_timeout"])
async def test_call_limits_hang_up(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
    limit: str,
) -> None:
    if limit == "max_call_duration":
        await configure(bridge_api, direct("limit-room"), max_call_duration=Duration(seconds=3))
    else:
        media = api.SIPMediaConfig(media_timeout=Duration(seconds=2))
        await configure(bridge_api, direct("limit-room"), media=media)
    call = asyncio.create_task(sipp_phone.call(hold_ms=None))
    room = await wait_for_room(livekit_api, "limit-room")
    async with agent_in(livekit_server, room) as agent:
        await agent.publish_tone(1000)
        await rtp_phone.wait_heard(0.5)
        if limit == "media_timeout":
            await rtp_phone.close()  # the phone's media stops; its signalling stays up
        (await call).check()  # the bridge's BYE ended it (the phone would have waited up to 90 s)
    await assert_released(call_bridge, livekit_api, room)
    expected = {"max_call_duration": "max_call_duration reached", "media_timeout": "media timeout"}[limit]
    assert f"{expected}: sent BYE" in call_bridge.log_text()
