"""A steady frame cadence on a monotonic clock, pure and testable with a fake clock, plus its asyncio drivers.

Deadlines are ``start + n * interval``, never "last wake-up + interval", so the cadence does not drift however
late the event loop wakes. A late wake-up by a frame or two is caught up at once (receivers' jitter buffers
absorb that); a longer stall would turn into a burst, so those slots are skipped instead and reported, and the
RTP timestamp jumps over them like a loss.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)
FrameCallback = Callable[[int, int], None]


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


class SharedCadence:
    """One timer for every call of an event loop that uses the same packet interval.

    A timer per call would wake the loop 50 times a second per call, each wake-up costing more than the
    call's whole media work; here all calls are served in one pass per tick. A call whose callback raises is
    dropped from the cadence and told through its ``on_error``; the others carry on.
    """

    _instances: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[tuple[float, Callable[[], float]], SharedCadence]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        self._subscribers: dict[int, tuple[FrameCallback, Callable[[BaseException], None]]] = {}
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        """Counts passes, so that per-tick work shared by the calls (reading all sockets) runs once."""

    @classmethod
    def for_loop(cls, interval: float, clock: Callable[[], float] = time.monotonic) -> SharedCadence:
        per_loop = cls._instances.setdefault(asyncio.get_running_loop(), {})
        key = (interval, clock)
        if key not in per_loop:
            per_loop[key] = cls(interval, clock)
        return per_loop[key]

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, on_frames: FrameCallback, on_error: Callable[[BaseException], None]) -> int:
        token = self._next_id
        self._next_id += 1
        self._subscribers[token] = (on_frames, on_error)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(run_cadence(self.interval, self._tick, self._clock))
        return token

    def unsubscribe(self, token: int) -> None:
        self._subscribers.pop(token, None)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    def _tick(self, skipped: int, frames: int) -> None:
        self.ticks += 1
        for token, (on_frames, on_error) in list(self._subscribers.items()):
            try:
                on_frames(skipped, frames)
            except Exception as exc:
                logger.exception("media cadence callback failed; dropping it")
                self.unsubscribe(token)
                on_error(exc)
