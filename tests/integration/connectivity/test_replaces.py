"""INVITE with Replaces (RFC 3891) end to end: a phone's call is taken over by a second caller, as a PBX does for an
attended transfer. The agent keeps the same participant and hears the new caller; the first phone gets BYE; the
participant's attributes name the replaced call. A caller the call's trunk does not admit may not take it over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.audio import dominant_frequency
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import CALLER, TRUNK_NUMBER, configure, direct
from harness.participant import RATE, TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant
from harness.rtp_phone import RtpPhone
from harness.sip_client import RawSipClient, SentRequest
from harness.sipp_phone import SippPhone
from livekit import api

from sipbridge.sip.message import Response

pytestmark = pytest.mark.integration

ROOM = "replace-room"
IDENTITY = f"sip_{CALLER}"
FIRST_TONE, SECOND_TONE, AGENT_TONE = 500.0, 700.0, 1000.0


@pytest.fixture
async def second_phone() -> AsyncIterator[RtpPhone]:
    phone = RtpPhone()
    await phone.start()
    yield phone
    await phone.close()


async def hearing(agent: TestParticipant, tone: float, within: float = 20.0) -> None:
    """Wait until the last second the agent heard from the caller's participant is `tone`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        heard = agent.heard(IDENTITY)
        if len(heard) >= RATE and abs(dominant_frequency(heard[-RATE:], RATE) - tone) < 5:
            return
        assert loop.time() < deadline, f"the agent never heard {tone} Hz from {IDENTITY}"
        await asyncio.sleep(0.1)


async def answered_call(sip: RawSipClient) -> tuple[SentRequest, Response]:
    invite = sip.invite(TRUNK_NUMBER, CALLER)
    final = await sip.final(invite, within=30)
    assert final.status == 200, final.status
    contact = (final.headers.get("Contact") or "").strip("<>")
    sip.request(
        "ACK", contact, to_user=TRUNK_NUMBER, from_user=CALLER, call_id=invite.call_id, cseq=1,
        from_tag=invite.from_tag, to_tag=final.to.tag,
    )  # fmt: skip
    return invite, final


async def test_invite_with_replaces_takes_over_the_call_and_the_agent_hears_the_new_caller(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone,
    second_phone: RtpPhone,
) -> None:  # fmt: skip
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct(ROOM), allowed_addresses=["127.0.0.1"])
        rtp_phone.play_tone(FIRST_TONE)
        second_phone.play_tone(SECOND_TONE)
        async with (
            TestParticipant(
                livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, ROOM, "agent"
            ) as agent,
            RawSipClient(bridge.sip_port) as first,
        ):
            await agent.publish_tone(AGENT_TONE)
            first.rtp_port = rtp_phone.port
            invite, final = await answered_call(first)
            await hearing(agent, FIRST_TONE)
            sid = (await wait_for_participant(livekit_api, ROOM, IDENTITY)).sid

            replaces = f"{invite.call_id};to-tag={final.to.tag};from-tag={invite.from_tag}"
            taker = SippPhone(tmp_path / "second", bridge.sip_port, second_phone.port, headers={"Replaces": replaces})
            calling = asyncio.create_task(taker.call(hold_ms=6000))
            await hearing(agent, SECOND_TONE)  # the same participant, the new caller's audio
            participant = await wait_for_participant(livekit_api, ROOM, IDENTITY)
            assert participant.sid == sid
            assert participant.attributes["sip.replaces"] == invite.call_id
            assert participant.attributes["sip.callIDFull"] != invite.call_id
            heard_by_new_caller = await second_phone.wait_heard(2.0)
            assert abs(dominant_frequency(heard_by_new_caller[-8000:], 8000) - AGENT_TONE) < 5
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not any(r.method == "BYE" for r in first.received_requests):  # the replaced leg is hung up
                assert loop.time() < deadline, "no BYE for the replaced call"
                await asyncio.sleep(0.05)
            (await calling).check()


async def test_replaces_from_a_source_the_trunk_does_not_admit_is_refused(
    tmp_path: Path, livekit_server: LiveKitServer, rtp_phone: RtpPhone
) -> None:
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct(ROOM), allowed_addresses=["127.0.0.1"])
            # A second trunk admits the intruder's number; it must not take over the first trunk's call.
            await client.sip.create_inbound_trunk(
                api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(name="other", numbers=["+15105550111"]))
            )
        async with (
            TestParticipant(
                livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, ROOM, "agent"
            ) as agent,
            RawSipClient(bridge.sip_port) as first,
            RawSipClient(bridge.sip_port) as intruder,
        ):
            await agent.publish_tone(AGENT_TONE)
            first.rtp_port = rtp_phone.port
            invite, final = await answered_call(first)
            replaces = f"{invite.call_id};to-tag={final.to.tag};from-tag={invite.from_tag}"
            attempt = intruder.invite("+15105550111", "+13105550199", headers={"Replaces": replaces})
            refused = await intruder.final(attempt)
            assert refused.status == 403
            assert not any(r.method == "BYE" for r in first.received_requests)
