"""The Go service's call keys on the wire, with sipp and an RTP phone: ``add_record_route`` (the 200 OK names this
node, and the caller's BYE comes back by it), ``outbound_route_headers`` (the INVITE carries the Route headers and
goes to the proxy they name, not to the trunk's address) and ``audio_dtmf`` (a digit from the room reaches the phone
as an RFC 4733 event and as its two tones in the same slots' audio)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from harness.audio import goertzel_dbfs
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import configure, direct
from harness.participant import TestParticipant
from harness.ports import LOOPBACK
from harness.processes import LiveKitServer
from harness.rooms import wait_for_room
from harness.rtp_phone import FRAME, RATE, RtpPhone
from harness.sipp_callee import SippCallee
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

ROW, COLUMN = 770.0, 1336.0  # the digit 5


def agent_in(server: LiveKitServer, room: str) -> TestParticipant:
    return TestParticipant(server.ws_url, server.api_key, server.api_secret, room, "agent")


async def test_record_route_on_the_answer_brings_the_callers_bye_back(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra={"add_record_route": True}) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct("rr-room"))
        phone = SippPhone(tmp_path / "sipp", bridge.sip_port, rtp_phone.port)
        call = asyncio.create_task(phone.call(hold_ms=3000))
        room = await wait_for_room(livekit_api, "rr-room")
        async with agent_in(livekit_server, room) as agent:
            await agent.publish_tone(1000)  # the bridge answers once the room has audio
            result = await call
    result.check()  # the BYE, sent by the route set, was answered 200
    ours = f"<sip:{LOOPBACK}:{bridge.sip_port};transport=udp;lr>"
    ok = result.message("received", "SIP/2.0 200 OK")
    assert f"Record-Route: {ours}" in ok, ok
    assert f"Contact: <sip:sipbridge@{LOOPBACK}:{bridge.sip_port}>" in ok, ok
    bye = result.message("sent", "BYE")
    assert f"Route: {ours}" in bye, bye


async def test_outbound_invite_goes_by_the_route_headers(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    proxy = SippCallee(tmp_path / "proxy", rtp_phone.port)  # sipp answering at the proxy's address
    route = f"<sip:{proxy.address};lr>"
    extra = {"outbound_route_headers": [route]}
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra=extra) as bridge:
        async with api_client(bridge) as client:
            trunk = api.SIPOutboundTrunkInfo(name="behind a proxy", address="carrier.invalid", numbers=["+15105550100"])
            created = await client.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
            answering = asyncio.create_task(proxy.answer(ring_ms=100))
            await client.sip.create_sip_participant(
                api.CreateSIPParticipantRequest(
                    sip_trunk_id=created.sip_trunk_id, sip_call_to="+12135550100", room_name="routed",
                    participant_identity="callee", wait_until_answered=True,
                )
            )  # fmt: skip
            await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room="routed", identity="callee"))
            result = await answering
    result.check()
    invite = result.message("received", "INVITE ")
    assert invite.startswith("INVITE sip:+12135550100@carrier.invalid"), invite  # loose routing: the URI stays
    assert f"Route: {route}" in invite, invite
    # The 200 had no Record-Route: the dialog's requests go straight to the Contact, with no Route.
    bye = result.message("received", "BYE ")
    assert bye and "Route:" not in bye, bye


async def test_audio_dtmf_sends_the_tones_in_the_audio_beside_the_events(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra={"audio_dtmf": True}) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct("dtmf-audio"))
        phone = SippPhone(tmp_path / "sipp", bridge.sip_port, rtp_phone.port)
        call = asyncio.create_task(phone.call(hold_ms=6000))
        room = await wait_for_room(livekit_api, "dtmf-audio")
        async with agent_in(livekit_server, room) as agent:
            await agent.publish_tone(1000, dbfs=-30)
            await rtp_phone.wait_heard(0.5)
            await agent.publish_dtmf(5, "5")
            async with asyncio.timeout(20):
                while not rtp_phone.digits:  # noqa: ASYNC110 (the phone's socket fills the list; no event to await)
                    await asyncio.sleep(0.05)
            await rtp_phone.sample(0.3)  # the audio after the event's end packets
        (await call).check()
    assert rtp_phone.digits == ["5"]
    start = rtp_phone.digit_stamps[0]
    toned = []
    for stamp, frame in zip(rtp_phone.audio_stamps, rtp_phone.received, strict=True):
        # Each of the digit's two tones is sent at -12 dBFS; the room's 1000 Hz at -30 leaves both bands below -45.
        if min(goertzel_dbfs(frame, RATE, ROW), goertzel_dbfs(frame, RATE, COLUMN)) > -20:
            toned.append((stamp - start) & 0xFFFFFFFF)
    # The tone is in the audio packets of the event's own slots (it lasts 250 ms, as livekit/sip's, the event's 15
    # packets 300 ms from the event's timestamp), and only there: 13 frames in a row, unless the loaded machine made
    # the cadence skip one.
    assert toned, "no audio packet carried the 770 Hz + 1336 Hz tone"
    assert all(offset < 15 * FRAME and offset % FRAME == 0 for offset in toned), toned
    assert len(toned) >= 12 and np.all(np.diff(toned) == FRAME), toned
