"""Simultaneous inbound calls, each with audio both ways, leave no call, RTP port or task behind."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from harness.agent_pool import AgentPool, ToneReport
from harness.audio import rms_dbfs, spectral_peaks, tone_margin
from harness.bridge import BridgeProcess
from harness.inbound_setup import configure, individual
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

pytestmark = pytest.mark.integration


CALLS = 20
WAVE = 5
AGENT_TONE = 1050.0


def caller_tone(i: int) -> float:
    """Each caller's own tone, 150 Hz apart across the telephone band (375 to 3225 Hz) and at least 75 Hz from the
    agents' tone: a tone choppy from a loaded machine's dropouts spreads a little energy around itself, which must
    not pass for another call's tone leaking in."""
    return 375.0 + 150.0 * i


AGENT_WORKERS = 4
"""Agents run in worker processes (harness.agent_pool): twenty rooms in one SDK process do not keep real time here."""


async def phone_report(phone: RtpPhone, freq: float, others: list[float]) -> ToneReport:
    tail = phone.heard()[-2 * RATE :]
    if len(tail) < 2 * RATE or rms_dbfs(tail) < -90:
        return ToneReport(rms_dbfs(tail), math.nan, "no audio")
    return ToneReport(rms_dbfs(tail), tone_margin(tail, RATE, freq, others), spectral_peaks(tail, RATE))


async def heard_tone(measure: Callable[[], Awaitable[ToneReport]], what: str) -> None:
    """Wait until the last two seconds carry the expected tone at least 10 dB above every other call's tone (a
    leak from another call would show there). Short dropouts, which a loaded 2-core machine causes, spread some
    energy but do not move the tone."""
    deadline = time.monotonic() + 60
    while True:
        report = await measure()
        if report.rms_dbfs > -40 and report.margin_db >= 10:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: tone not clear (margin {report.margin_db:.0f} dB, {report.peaks})")
        await asyncio.sleep(0.5)


async def test_simultaneous_calls_with_audio_both_ways(
    tmp_path: Path, livekit_server: LiveKitServer, call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
) -> None:  # fmt: skip
    await configure(bridge_api, individual("load-"), krisp_enabled=False)
    phones = [RtpPhone() for _ in range(CALLS)]
    for i, phone in enumerate(phones):
        await phone.start()
        phone.play_tone(caller_tone(i))
    callers = [f"+1310555{1000 + i}" for i in range(CALLS)]
    sipps = [
        SippPhone(tmp_path / f"sipp{i}", call_bridge.sip_port, phone.port, from_=caller)
        for i, (phone, caller) in enumerate(zip(phones, callers, strict=True))
    ]
    calls: list[asyncio.Task[PhoneResult]] = []
    agents = AgentPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, AGENT_WORKERS)
    await agents.start()
    rooms: dict[int, str] = {}

    tones = [caller_tone(j) for j in range(CALLS)]

    async def both_ways(i: int) -> None:
        """Both sides of call i hear each other, and no other call's tone."""
        caller, phone, room = callers[i], phones[i], rooms[i]
        own, others = tones[i], tones[:i] + tones[i + 1 :]
        await heard_tone(lambda: agents.tone(room, f"sip_{caller}", own, others), f"call {i}, in the room")
        await heard_tone(lambda: phone_report(phone, AGENT_TONE, tones), f"call {i}, at the phone")

    async def set_up(i: int) -> None:
        """Call i rings into its room, its agent joins and speaks, the call is answered with audio both ways."""
        # The phone stays on the line until the bridge hangs up, so a slow machine cannot end a call early.
        calls.append(asyncio.create_task(sipps[i].call(limit=300)))
        caller = callers[i]
        room = rooms[i] = await wait_for_room(livekit_api, f"load-_{caller}_", within=60)
        await wait_for_participant(livekit_api, room, f"sip_{caller}", within=60)
        await agents.join(room, "agent", tone=AGENT_TONE, listen=False)  # it listens only while a check samples
        await both_ways(i)

    try:
        # The calls come in waves, as a busy trunk's do: twenty WebRTC handshakes at the same instant overrun a
        # 2-core machine that also runs the callers, the agents and livekit-server.
        for wave in range(0, CALLS, WAVE):
            await asyncio.gather(*(set_up(i) for i in range(wave, min(wave + WAVE, CALLS))))
        assert call_bridge.metrics()["sipbridge_active_calls"] == CALLS
        # All twenty up at once: every phone still hears its agent through the bridge. (The room side of each call
        # was checked while it came up, the last wave's with all twenty up; sampling twenty rooms again at once
        # re-subscribes twenty tracks, which the rtc SDK in the agent workers does not always survive.)
        tones_heard = [heard_tone(lambda p=phones[i]: phone_report(p, AGENT_TONE, tones), f"call {i}, at the phone")
                       for i in range(CALLS)]  # fmt: skip
        await asyncio.gather(*tones_heard)
        for i, caller in enumerate(callers):  # the bridge hangs up each call when its participant is removed
            who = api.RoomParticipantIdentity(room=rooms[i], identity=f"sip_{caller}")
            await livekit_api.room.remove_participant(who)
        results = await asyncio.gather(*calls)
    finally:
        await agents.close()
        for phone in phones:
            await phone.close()
    for result in results:
        result.check()
    deadline = asyncio.get_running_loop().time() + 30
    while call_bridge.metrics()["sipbridge_active_calls"] or call_bridge.metrics()["sipbridge_rtp_ports_in_use"]:
        assert asyncio.get_running_loop().time() < deadline, call_bridge.metrics()
        await asyncio.sleep(0.2)
    idle_tasks = call_bridge.metrics()["sipbridge_asyncio_tasks"]
    assert idle_tasks < 30, f"{idle_tasks:.0f} asyncio tasks still alive after every call ended"
