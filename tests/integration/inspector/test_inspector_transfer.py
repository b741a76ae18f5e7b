"""Both legs of a transfer in one trace: an agent transfers a caller (REFER, NOTIFY, BYE in the call's trace), the
caller's phone follows the REFER with a new INVITE to the target, and the inspector links that new call to the
first, drawing both in one ladder (three parties: the caller's two legs and the bridge)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness.inbound_setup import CALLER, configure, direct
from harness.inspector import InspectedBridge, InspectorClient
from harness.participant import TestParticipant
from harness.ports import LOOPBACK
from harness.processes import LiveKitServer
from harness.rooms import wait_gone
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

TARGET = "+15105550199"


async def test_a_transfers_new_call_is_the_first_calls_second_leg(
    livekit_server: LiveKitServer,
    inspected_bridge: InspectedBridge,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    inspector: InspectorClient,
    rtp_phone: RtpPhone,
    tmp_room: str,
    tmp_path: Path,
) -> None:
    await configure(bridge_api, direct(tmp_room))  # the target number has no trunk: its call is refused 404
    rtp_phone.play_tone(440)
    first = SippPhone(tmp_path / "first", inspected_bridge.sip_port, rtp_phone.port, call_id="leg1@transfer.test")
    calling = asyncio.create_task(first.call_and_get_transferred())
    identity = f"sip_{CALLER}"
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, tmp_room, "agent"
    ) as agent:
        await agent.publish_tone(1000)
        await agent.wait_heard(identity, 1.0, within=30)
        target = f"sip:{TARGET}@{LOOPBACK}:{inspected_bridge.sip_port}"
        request = api.TransferSIPParticipantRequest(
            room_name=tmp_room, participant_identity=identity, transfer_to=target
        )
        await bridge_api.sip.transfer_sip_participant(request)
        await wait_gone(livekit_api, tmp_room, identity)
    (await calling).check()
    # The caller's phone follows the REFER: a new call to the target, from another port.
    second = SippPhone(tmp_path / "second", inspected_bridge.sip_port, rtp_phone.port, to=TARGET,
                       call_id="leg2@transfer.test")  # fmt: skip
    (await second.call_expecting(404)).check()

    one = await inspector.wait_call(lambda c: c["call_id"] == "leg1@transfer.test" and c["ended"], "first leg")
    two = await inspector.wait_call(lambda c: c["call_id"] == "leg2@transfer.test" and c["ended"], "second leg")
    assert one["legs"] == [two["id"]] and two["legs"] == [one["id"]]
    detail = await inspector.json(f"/api/calls/{one['id']}")
    by_leg = [(m["call_id"], m["label"]) for m in detail["messages"]]
    own = [label for call_id, label in by_leg if call_id == "leg1@transfer.test"]
    assert own[-6:] == ["REFER", "202 Accepted", "NOTIFY", "200 OK", "BYE", "200 OK"]
    second_leg = [label.split(" ")[0] for call_id, label in by_leg if call_id == "leg2@transfer.test"]
    assert second_leg[-2:] == ["404", "ACK"]  # the 404's phrase is the decision's reason ("no inbound trunk ...")
    times = [m["at"] for m in detail["messages"]]
    assert times == sorted(times)  # one time line for both legs
    _, _, page = await inspector.get(f"/calls/{one['id']}", Accept="text/html")
    assert page.count(b'class="arrow"') == len(detail["messages"])
    columns = [f"{LOOPBACK}:{first.port}", "sipbridge", f"{LOOPBACK}:{second.port}"]
    assert all(f">{column}</text>".encode() in page for column in columns)
