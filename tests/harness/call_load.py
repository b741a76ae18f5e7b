"""Many simultaneous inbound calls, each with a tone of its own: is each call's audio where it belongs?

Shared by the load test (a few calls, every one must carry audio both ways) and bench/bench_inbound_calls.py
(the capacity figure: of N calls, how many do). Each caller plays its own tone and every room's agent the same
AGENT_TONE, so a room hearing another caller, or a phone hearing nothing, shows in the spectrum.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from .agent_pool import AgentPool, ToneReport
from .audio import rms_dbfs, spectral_peaks, tone_margin
from .rtp_phone import RATE, RtpPhone

AGENT_TONE = 1050.0
MAX_CALLER_TONES = 20
"""Callers with a tone of their own (375 to 3225 Hz: the telephone band holds no more 150 Hz apart)."""


def caller_tone(i: int) -> float:
    """Caller i's tone, 150 Hz from its neighbours and at least 75 Hz from AGENT_TONE: a tone made choppy by a
    loaded machine's dropouts spreads a little energy around itself, which must not pass for another call's tone."""
    if not 0 <= i < MAX_CALLER_TONES:
        raise ValueError(f"caller {i}: only {MAX_CALLER_TONES} callers have a tone of their own")
    return 375.0 + 150.0 * i


async def phone_report(phone: RtpPhone, freq: float, others: list[float]) -> ToneReport:
    """What the phone heard over its last two seconds, measured at `freq` against `others`."""
    tail = phone.heard()[-2 * RATE :]
    if len(tail) < 2 * RATE or rms_dbfs(tail) < -90:
        return ToneReport(rms_dbfs(tail), math.nan, "no audio")
    return ToneReport(rms_dbfs(tail), tone_margin(tail, RATE, freq, others), spectral_peaks(tail, RATE))


async def heard_tone(measure: Callable[[], Awaitable[ToneReport]], what: str, within: float = 60.0) -> None:
    """Wait until a measurement carries the expected tone at least 10 dB above every other call's tone (a leak from
    another call would show there); AssertionError naming `what` if it does not within `within` seconds. Short
    dropouts, which a loaded machine causes, spread some energy but do not move the tone."""
    deadline = time.monotonic() + within
    while True:
        report = await measure()
        if report.rms_dbfs > -40 and report.margin_db >= 10:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: tone not clear (margin {report.margin_db:.0f} dB, {report.peaks})")
        await asyncio.sleep(0.5)


async def room_hears_caller(
    agents: AgentPool, room: str, caller_identity: str, i: int, calls: int, within: float = 60.0
) -> None:
    """The agent in call i's room hears caller i's tone, clear of the other `calls` - 1 callers' tones."""
    tones = [caller_tone(j) for j in range(calls)]
    others = tones[:i] + tones[i + 1 :]

    async def measure() -> ToneReport:
        return await agents.tone(room, caller_identity, tones[i], others, within=within)

    await heard_tone(measure, f"call {i}, in the room", within)


async def phone_hears_agent(phone: RtpPhone, i: int, calls: int, within: float = 60.0) -> None:
    """Call i's phone hears its agent's tone, clear of every caller's tone."""
    tones = [caller_tone(j) for j in range(calls)]
    await heard_tone(lambda: phone_report(phone, AGENT_TONE, tones), f"call {i}, at the phone", within)
