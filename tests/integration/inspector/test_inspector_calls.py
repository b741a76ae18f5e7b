"""A real call (sipp for SIP, a test phone for RTP) as the inspector shows it: every SIP message in order in the
JSON, the ladder and the pcap; the loss a bad line induced; a MOS below a clean call's; the quality attributes on
the participant and the call metrics in Prometheus."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from harness.binaries import require_binary
from harness.impaired_phone import ImpairedRtpPhone
from harness.inbound_setup import CALLER, configure, direct
from harness.inspector import InspectedBridge, InspectorClient, sipp_exchange
from harness.participant import TestParticipant
from harness.ports import LOOPBACK
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
HOLD_MS = 12000


async def call_through(
    bridge: InspectedBridge, phone: RtpPhone, workdir: Path, livekit_api: api.LiveKitAPI, room: str
) -> tuple[PhoneResult, str, dict[str, str]]:
    """One call of HOLD_MS from sipp with `phone` carrying its RTP; returns sipp's result, the Call-ID, and the
    participant's attributes once the bridge has published its quality figures."""
    call_id = f"{uuid.uuid4().hex}@inspector.test"
    await phone.start()
    try:
        phone.play_tone(440)
        sipp = SippPhone(workdir, bridge.sip_port, phone.port, call_id=call_id)
        call = asyncio.create_task(sipp.call(hold_ms=HOLD_MS))
        attributes = await wait_for_quality_attributes(livekit_api, room)
        result = await call
    finally:
        await phone.close()
    result.check()
    return result, call_id, attributes


async def wait_for_quality_attributes(client: api.LiveKitAPI, room: str, within: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + within
    while True:
        participant = await wait_for_participant(client, room, IDENTITY, within)
        if "sip.quality.mos" in participant.attributes:
            return dict(participant.attributes)
        if time.monotonic() > deadline:
            raise AssertionError(f"no sip.quality.* attributes within {within} s: {dict(participant.attributes)}")
        await asyncio.sleep(0.2)


def tshark_messages(pcap: Path) -> list[tuple[str, str]]:
    """(method or status, Call-ID) of every SIP message tshark finds in the file."""
    fields = ["-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID"]
    out = subprocess.run(
        [str(require_binary("tshark")), "-r", str(pcap), "-Y", "sip", "-T", "fields", *fields],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [(method or status, call_id) for method, status, call_id in (line.split("\t") for line in out.splitlines())]


def metric_lines(bridge: InspectedBridge, name: str) -> list[str]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{bridge.metrics_port}/metrics", timeout=5) as response:
        return [line for line in response.read().decode().splitlines() if line.startswith(name)]


async def test_a_lossy_call_shows_in_the_inspector_with_its_messages_loss_and_a_lower_mos(
    livekit_server: LiveKitServer,
    inspected_bridge: InspectedBridge,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    inspector: InspectorClient,
    tmp_room: str,
    tmp_path: Path,
) -> None:
    trunk = await configure(bridge_api, direct(tmp_room))
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, tmp_room, "agent"
    ) as agent:
        await agent.publish_tone(1000)  # someone is there: each call is answered at once
        clean_result, clean_id, _ = await call_through(
            inspected_bridge, RtpPhone(), tmp_path / "clean", livekit_api, tmp_room
        )
        bad_line = ImpairedRtpPhone(loss=0.05, jitter_ms=30)
        lossy_result, lossy_id, attributes = await call_through(
            inspected_bridge, bad_line, tmp_path / "lossy", livekit_api, tmp_room
        )
    clean = await inspector.wait_call(lambda c: c["call_id"] == clean_id and c["ended"], "clean call ended")
    lossy = await inspector.wait_call(lambda c: c["call_id"] == lossy_id and c["ended"], "lossy call ended")

    # Every message sipp sent or received, in order, is in the trace (sipp's "sent" is the bridge's "in").
    for result, summary in ((clean_result, clean), (lossy_result, lossy)):
        detail = await inspector.json(f"/api/calls/{summary['id']}")
        shown = [(m["label"], m["direction"] == "in") for m in detail["messages"]]
        assert shown == sipp_exchange(result.messages)
        assert detail["sip_status"] == 200 and detail["trunk_id"] == trunk.sip_trunk_id
        assert (detail["room"], detail["participant"], detail["codec"]) == (tmp_room, IDENTITY, "PCMU")
        assert detail["ending"].startswith("the phone side ended the call")

    # The loss the bad line induced, measured as RFC 3550 counts it; its jitter; a lower MOS than the clean line.
    lossy_detail = await inspector.json(f"/api/calls/{lossy['id']}")
    last = lossy_detail["quality"]["samples"][-1]
    assert bad_line.dropped > 10
    assert abs(last["rx_loss_pct"] - bad_line.induced_loss_pct) <= 1.0, (last, bad_line.induced_loss_pct)
    clean_detail = await inspector.json(f"/api/calls/{clean['id']}")
    assert clean_detail["quality"]["samples"][-1]["rx_loss_pct"] == 0.0
    assert last["rx_jitter_ms"] > 5.0  # up to 30 ms of delay on each packet: ~10 ms RFC 3550 jitter at least
    assert lossy["mos"] < clean["mos"], (lossy["mos"], clean["mos"])
    assert len(lossy_detail["quality"]["samples"]) >= 2  # every 5 s and at the end

    # The participant carried the figures for agents.
    assert 1.0 <= float(attributes["sip.quality.mos"]) <= 4.5
    assert float(attributes["sip.quality.lossPct"]) >= 0.0 and float(attributes["sip.quality.jitterMs"]) > 0.0

    # The call page's ladder has one arrow per message; the list links to both calls.
    status, kind, page = await inspector.get(f"/calls/{lossy['id']}")
    assert status == 200 and kind == "text/html"
    assert page.count(b'class="arrow"') == len(lossy_detail["messages"])
    _, _, index = await inspector.get("/")
    assert f'href="/calls/{clean["id"]}"'.encode() in index and f'href="/calls/{lossy["id"]}"'.encode() in index

    # The pcap opens in tshark with the same messages in the same order.
    status, kind, pcap = await inspector.get(f"/calls/{lossy['id']}/pcap")
    assert status == 200 and kind == "application/vnd.tcpdump.pcap"
    saved = tmp_path / "lossy.pcap"
    saved.write_bytes(pcap)
    expected = [(m["label"].split(" ")[0], lossy_id) for m in lossy_detail["messages"]]
    assert tshark_messages(saved) == expected

    # Prometheus: both calls answered on the trunk, their setup time, and quality observations.
    trunk_id = trunk.sip_trunk_id
    calls = metric_lines(inspected_bridge, "sipbridge_calls_total{")
    assert f'sipbridge_calls_total{{direction="inbound",status="200",trunk="{trunk_id}"}} 2.0' in calls
    assert 'sipbridge_call_setup_seconds_count{direction="inbound"} 2.0' in metric_lines(
        inspected_bridge, "sipbridge_call_setup_seconds_count"
    )
    observed = metric_lines(inspected_bridge, "sipbridge_rtp_mos_count")
    assert any(re.search(rf'stream="received",trunk="{trunk_id}"}} [4-9]', line) for line in observed), observed
