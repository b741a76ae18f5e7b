"""The frame cadence on a fake clock: no drift, catch-up of short stalls, skipping of long ones."""

from __future__ import annotations

import asyncio
import random

from sipbridge.media.cadence import FrameClock, SharedCadence, run_cadence


def test_late_wakeups_never_drift() -> None:
    clock = FrameClock(0.02, start=100.0)
    rng = random.Random(2)
    produced = 0
    for slot in range(10000):
        skipped, frames = clock.due(100.0 + slot * 0.02 + rng.uniform(0, 0.019))  # always a bit late
        assert skipped == 0
        produced += frames
    assert produced == 10000
    assert clock.next_deadline == 100.0 + 10000 * 0.02


def test_early_wakeup_produces_nothing() -> None:
    clock = FrameClock(0.02, start=0.0)
    assert clock.due(0.0) == (0, 1)
    assert clock.due(0.019) == (0, 0)
    assert clock.due(0.02) == (0, 1)


def test_short_stall_is_caught_up_and_long_stall_skipped() -> None:
    clock = FrameClock(0.02, start=0.0, max_catch_up=2)
    assert clock.due(0.0) == (0, 1)
    assert clock.due(0.041) == (0, 2)  # one frame late: both produced now
    assert clock.due(0.041 + 0.2) == (8, 2)  # ten slots owed: the oldest eight are skipped, not burst
    assert clock.skipped == 8
    assert clock.due(0.26) == (0, 1)


async def test_driver_calls_back_once_per_slot_of_its_clock() -> None:
    now = [0.0]

    def fake_clock() -> float:
        now[0] += 0.007  # every reading of the clock advances it: the driver must still keep slots exact
        return now[0]

    calls: list[tuple[int, int]] = []
    enough = asyncio.Event()

    def on_frames(skipped: int, frames: int) -> None:
        calls.append((skipped, frames))
        if sum(f for _, f in calls) >= 50:
            enough.set()

    task = asyncio.create_task(run_cadence(0.02, on_frames, clock=fake_clock))
    await enough.wait()
    task.cancel()
    elapsed_slots = int((now[0] - 0.007) // 0.02) + 1
    assert sum(s + f for s, f in calls) in (elapsed_slots, elapsed_slots - 1)
    assert all(s == 0 for s, _ in calls)


async def test_shared_cadence_serves_many_calls_and_drops_only_a_failing_one() -> None:
    now = [0.0]

    def fake_clock() -> float:
        now[0] += 0.007
        return now[0]

    cadence = SharedCadence.for_loop(0.02, fake_clock)
    assert SharedCadence.for_loop(0.02, fake_clock) is cadence
    counts = [0, 0]
    errors: list[BaseException] = []
    enough = asyncio.Event()

    def healthy(skipped: int, frames: int) -> None:
        counts[0] += frames
        if counts[0] >= 20:
            enough.set()

    def failing(skipped: int, frames: int) -> None:
        counts[1] += frames
        raise RuntimeError("broken call")

    healthy_token = cadence.subscribe(healthy, errors.append)
    cadence.subscribe(failing, errors.append)
    await enough.wait()
    assert counts[1] == 1 and len(errors) == 1 and cadence.subscribers == 1
    cadence.unsubscribe(healthy_token)
    assert cadence.subscribers == 0
