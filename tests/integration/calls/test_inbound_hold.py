"""A caller holds the bridge (re-INVITE with a=sendonly or a=inactive) for 30 s, twice the media timeout: we send
no RTP while held, the call survives, and audio flows both ways again after the caller resumes.

Each layer was tested alone; the link between them dropped the negotiated direction, so we kept sending on hold
and an inactive hold was hung up by the media timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from harness.audio import dominant_frequency
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

IDENTITY = f"sip_{CALLER}"
HOLD_MS = 30_000
STRAGGLERS = 3
"""Packets of ours that may still arrive after the hold is ACKed (sent before the re-INVITE was processed)."""


async def wait_for_file(path: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while not path.exists():  # noqa: ASYNC240 (sipp creates it; a stat per 50 ms)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} not within {within} s")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("direction", ["sendonly", "inactive"])
async def test_hold_sends_nothing_survives_and_resumes(
    tmp_path: Path,
    direction: str,
    livekit_server: LiveKitServer,
    call_bridge: BridgeProcess,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
    sipp_phone: SippPhone,
) -> None:
    await configure(bridge_api, direct(f"hold-{direction}"))
    rtp_phone.play_tone(440, dbfs=-20)
    marks = tmp_path / "marks"
    call = asyncio.create_task(sipp_phone.call_and_hold(direction, hold_ms=HOLD_MS, marks=marks))
    room = await wait_for_room(livekit_api, f"hold-{direction}")
    await wait_for_participant(livekit_api, room, IDENTITY)
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(1000, dbfs=-20)
        await wait_for_file(marks / "held", within=60)
        rtp_phone.muted = direction == "inactive"  # an inactive hold: the phone sends nothing either
        packets_at_hold = len(rtp_phone.received)
        await wait_for_file(marks / "resumed", within=HOLD_MS / 1000 + 30)
        rtp_phone.muted = False
        heard_after, caller_after = await asyncio.gather(
            rtp_phone.sample(seconds=1.0), agent.next_heard(IDENTITY, seconds=1.0)
        )
        result = await call
    result.check()  # the phone's BYE after the resume was answered: the call lived through the hold
    # Counted from when the test saw the hold (a late look counts less) to when sipp sent the resume, by when each
    # packet was read (never before it arrived): what the bridge sent after the resume never counts.
    resume_sent = result.sent_at("3 INVITE")
    packets_while_held = sum(1 for t in rtp_phone.arrivals[packets_at_hold:] if t < resume_sent)
    assert packets_while_held <= STRAGGLERS, f"{packets_while_held} RTP packets sent to a caller who held us"
    assert abs(dominant_frequency(heard_after, RATE) - 1000) <= 5
    assert abs(dominant_frequency(caller_after, 48000) - 440) <= 5
    assert "media timeout" not in call_bridge.log_text()
