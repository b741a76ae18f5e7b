"""/metrics carries the Go SIP service's metric names and labels, and they move with a real call: a dashboard
built for livekit/sip reads a sipbridge node unchanged."""

from __future__ import annotations

import asyncio
import time

import pytest
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def wait_for(bridge: BridgeProcess, name: str, at_least: float, within: float = 30.0, **labels: str) -> Samples:
    deadline = time.monotonic() + within
    while True:
        samples = bridge.labelled_metrics()
        if total(samples, name, **labels) >= at_least:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} not >= {at_least}: {total(samples, name, **labels)}")
        await asyncio.sleep(0.2)


async def test_go_metrics_move_with_a_call(
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    await configure(bridge_api, direct("metrics-room"))
    rtp_phone.play_tone(440)
    call = asyncio.create_task(sipp_phone.call(hold_ms=None))  # the bridge hangs up when the agent removes it
    room = await wait_for_room(livekit_api, "metrics-room")
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000)
        await wait_for_call_status(livekit_api, room, IDENTITY, "active")
        during = await wait_for(call_bridge, "livekit_sip_calls_active", 1, dir="in")
        received = total(during, "livekit_sip_packets_rtp", dir="in", op="recv", payload="PCMU")
        await wait_for(call_bridge, "livekit_sip_packets_rtp", received + 50, dir="in", op="recv", payload="PCMU")
        await wait_for(call_bridge, "livekit_sip_packets_rtp", 50, dir="in", op="send", payload="PCMU")
        await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
        (await call).check()
    after = await wait_for(call_bridge, "livekit_sip_calls_terminated", 1, result="success", reason="removed")
    node = {labels for (name, labels), _ in after.items() if name == "livekit_sip_invite_requests_raw"}
    assert len(node) == 1 and dict(next(iter(node)))["node_id"].startswith("NE_")
    assert total(after, "livekit_sip_invite_requests", dir="in") == 1
    assert total(after, "livekit_sip_invite_accepted", dir="in") == 1
    assert total(after, "livekit_sip_calls_active", dir="in") == 0
    assert total(after, "livekit_sip_dur_session_sec_count", dir="in") == 1
    assert total(after, "livekit_sip_dur_join_sec_count", dir="in") == 1
    assert total(after, "livekit_sip_codec_offered_total", dir="in", codec="PCMU") == 1
    assert total(after, "livekit_sip_available") == 1


async def test_a_refused_invite_counts_as_an_invite_error(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI, sipp_phone: SippPhone
) -> None:
    await configure(bridge_api, direct("elsewhere"), numbers=["+15550000000"])  # not the number called
    (await sipp_phone.call_expecting(404)).check()
    after = await wait_for(call_bridge, "livekit_sip_invite_error", 1, reason="no-trunk", to="unknown")
    assert total(after, "livekit_sip_calls_terminated", result="client_error", reason="no-trunk") == 1
    assert total(after, "livekit_sip_invite_accepted") == 0
