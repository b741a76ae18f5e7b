"""A steady frame cadence on a monotonic clock, pure and testable with a fake clock, plus its asyncio driver.

Deadlines are ``start + n * interval``, never "last wake-up + interval", so the cadence does not drift however
late the event loop wakes. A late wake-up by a frame or two is caught up at once (receivers' jitter buffers
absorb that); a longer stall would turn into a burst, so those slots are skipped instead and reported, and the
RTP timestamp jumps over them like a loss.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class FrameClock:
    def __init__(self, interval: float, start: float, max_catch_up: int = 2) -> None:
        self.interval = interval
        self.max_catch_up = max_catch_up
        self._start = start
        self._next_slot = 0
        self.skipped = 0

    @property
    def next_deadline(self) -> float:
        return self._start + self._next_slot * self.interval

    def due(self, now: float) -> tuple[int, int]:
        """``(skipped, frames)``: slots given up because the caller was too late, then frames to produce now."""
        elapsed_slots = int((now - self._start) // self.interval) + 1
        owed = elapsed_slots - self._next_slot
        if owed <= 0:
            return 0, 0
        skip = max(0, owed - self.max_catch_up)
        self.skipped += skip
        self._next_slot += owed
        return skip, owed - skip


async def run_cadence(
    interval: float, on_frames: Callable[[int, int], None], clock: Callable[[], float] = time.monotonic
) -> None:
    """Calls ``on_frames(skipped, frames)`` on every deadline until cancelled."""
    frame_clock = FrameClock(interval, clock())
    while True:
        skipped, frames = frame_clock.due(clock())
        if frames:
            on_frames(skipped, frames)
        await asyncio.sleep(max(0.0, frame_clock.next_deadline - clock()))
