"""Simultaneous inbound calls, each with audio both ways, leave no call, RTP port or task behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from harness.audio import rms_dbfs
from harness.bridge import BridgeProcess
from harness.inbound_setup import configure, individual
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_for_room
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration


CALLS = 10
"""The issue asks for 20. On this project's 2-core machines 20 calls plus 20 agent participants in the test
process do not keep real time, and the SDK in the test process then fails to open some agents' audio streams
(`track_subscribed`: "handle is not a FfiTrack"), so the test runs 10; bench/bench_inbound_calls.py measures 20."""


def peaks(samples: npt.NDArray[np.int16], rate: int) -> str:
    """The three strongest spectral peaks, to tell a distorted tone from another call's tone leaking in."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    top = sorted(range(1, len(spectrum) - 1), key=lambda k: spectrum[k], reverse=True)
    picked: list[int] = []
    for k in top:
        if all(abs(k - p) > 3 for p in picked):
            picked.append(k)
        if len(picked) == 3:
            break
    return "peaks " + ", ".join(
        f"{freqs[k]:.0f} Hz ({20 * np.log10(spectrum[k] / spectrum[picked[0]]):.0f} dB)" for k in picked
    )


def band_db(samples: npt.NDArray[np.int16], rate: int, freq: float) -> float:
    """Energy within ±4 Hz of `freq`, in dB (relative; for comparing bands of one recording)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(10 * np.log10(spectrum[(freqs > freq - 4) & (freqs < freq + 4)].sum() + 1e-9))


async def heard_tone(
    recording: Callable[[], npt.NDArray[np.int16]], rate: int, freq: float, others: list[float], what: str
) -> None:
    """Wait until the last two seconds of a recording carry `freq` at least 10 dB above every one of `others`
    (the tones of the other calls: a leak from another call would show there). Short dropouts, which a loaded
    2-core machine causes, spread some energy but do not move the tone."""
    deadline = time.monotonic() + 60
    while True:
        tail = recording()[-2 * rate :]
        if len(tail) == 2 * rate and rms_dbfs(tail) > -40:
            margin = band_db(tail, rate, freq) - max(band_db(tail, rate, f) for f in others)
            if margin >= 10:
                return
        else:
            margin = float("nan")
        if time.monotonic() > deadline:
            spectrum = peaks(tail, rate) if rms_dbfs(tail) > -90 else "no audio"
            raise AssertionError(f"{what}: {freq} Hz not clear (margin {margin:.0f} dB, {spectrum})")
        await asyncio.sleep(0.5)


async def test_simultaneous_calls_with_audio_both_ways(
    tmp_path: Path, livekit_server: LiveKitServer, call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
) -> None:  # fmt: skip
    await configure(bridge_api, individual("load-"), krisp_enabled=False)
    phones = [RtpPhone() for _ in range(CALLS)]
    for i, phone in enumerate(phones):
        await phone.start()
        phone.play_tone(400 + 20 * i)
    callers = [f"+1310555{1000 + i}" for i in range(CALLS)]
    sipps = [
        SippPhone(tmp_path / f"sipp{i}", call_bridge.sip_port, phone.port, from_=caller)
        for i, (phone, caller) in enumerate(zip(phones, callers, strict=True))
    ]
    # The phones stay on the line until the bridge hangs up, so a slow machine cannot end a call early.
    calls = [asyncio.create_task(s.call(limit=240)) for s in sipps]
    agents: list[TestParticipant] = []
    rooms: dict[int, str] = {}

    async def converse(i: int) -> None:
        """Join call i's room as its agent and check that both sides hear each other."""
        caller, phone = callers[i], phones[i]
        room = rooms[i] = await wait_for_room(livekit_api, f"load-_{caller}_", within=60)
        await wait_for_participant(livekit_api, room, f"sip_{caller}", within=60)
        agent = TestParticipant(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent")
        agents.append(agent)
        await agent.connect()
        await agent.publish_tone(1000)
        others = [400.0 + 20 * j for j in range(CALLS) if j != i]
        await heard_tone(lambda: agent.heard(f"sip_{caller}"), 48000, 400 + 20 * i, others, f"call {i}, in the room")
        await heard_tone(phone.heard, RATE, 1000, [400.0 + 20 * j for j in range(CALLS)], f"call {i}, at the phone")

    try:
        await asyncio.gather(*(converse(i) for i in range(CALLS)))
        assert call_bridge.metrics()["sipbridge_active_calls"] == CALLS
        for i, caller in enumerate(callers):  # the bridge hangs up each call when its participant is removed
            who = api.RoomParticipantIdentity(room=rooms[i], identity=f"sip_{caller}")
            await livekit_api.room.remove_participant(who)
        results = await asyncio.gather(*calls)
    finally:
        for agent in agents:
            await agent.disconnect()
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
