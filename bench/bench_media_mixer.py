"""The mixer under bursty input: silent frames, gaps, drops and added delay for a few arrival patterns.

A producer makes one 20 ms frame every 20 ms for 12 s (600 frames, as in LiveKit's PR 727 measurement) but
delivers them in chunks, each when its last frame is made plus random lateness. The mixer is pulled every
20 ms on the same simulated clock. "Delay" is from a frame being made to it being played.

Run: .venv/bin/python bench/bench_media_mixer.py
"""

from __future__ import annotations

import random
import time

import numpy as np

from sipbridge.media.mixer import Mixer

FRAME_S = 0.02


def replay(chunk_sizes: list[int], lateness_s: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    mixer = Mixer(8000)
    room = mixer.add_input()
    arrivals = []
    made = 0
    for size in chunk_sizes:
        arrivals.append(((made + size) * FRAME_S + rng.uniform(0, lateness_s), made, size))
        made += size
    arrivals.sort()
    silent, delays, played, index = 0, [], 0, 0
    for pull in range(made + 100):
        now = pull * FRAME_S
        while index < len(arrivals) and arrivals[index][0] <= now:
            _, first, count = arrivals[index]
            room.push(np.concatenate([np.full(160, 1 + first + i, np.int16) for i in range(count)]))
            index += 1
        out = mixer.mix_frame()
        if out.any():
            delays.append(now - int(out[0]) * FRAME_S)  # frame f is made at (f + 1) * 20 ms
            played += 1
        elif played and played < made:
            silent += 1
    return {
        "frames": made,
        "silent": silent,
        "gaps": room.underruns - 1,  # the last underrun is the end of the audio
        "dropped_ms": room.dropped_samples / 8,
        "delay_mean_ms": 1000 * float(np.mean(delays)),
        "delay_max_ms": 1000 * float(np.max(delays)),
    }


def mix_cost_us(inputs: int, input_rate: int, frames: int = 3000) -> float:
    """CPU per mixed 20 ms frame at 16 kHz with ``inputs`` speaking participants (push + mix)."""
    mixer = Mixer(16000)
    participants = [mixer.add_input(input_rate) for _ in range(inputs)]
    frame = (np.sin(np.arange(input_rate // 50) * 0.05) * 3000).astype(np.int16)
    started = time.process_time()
    for _ in range(frames):
        for participant in participants:
            participant.push(frame)
        mixer.mix_frame()
    return (time.process_time() - started) / frames * 1e6


def main() -> None:
    rng = random.Random(1)
    patterns = {
        "steady 20 ms, 5 ms late": ([1] * 600, 0.005),
        "200 ms chunks, 15 ms late": ([10] * 60, 0.015),
        "300 ms chunks, 15 ms late": ([15] * 40, 0.015),
        "60-300 ms chunks, 15 ms late": ([rng.randint(3, 15) for _ in range(67)], 0.015),
    }
    print(f"{'pattern':32} {'frames':>6} {'silent':>6} {'gaps':>4} {'dropped':>7} {'delay mean/max ms':>18}")
    for name, (sizes, lateness) in patterns.items():
        r = replay(sizes, lateness, seed=2)
        print(
            f"{name:32} {r['frames']:6.0f} {r['silent']:6.0f} {r['gaps']:4.0f} {r['dropped_ms']:7.0f}"
            f" {r['delay_mean_ms']:8.0f} / {r['delay_max_ms']:.0f}"
        )
    print()
    print("mixer CPU per 20 ms frame at 16 kHz (push + mix), microseconds")
    for inputs in (1, 2, 5, 10):
        native, resampled = mix_cost_us(inputs, 16000), mix_cost_us(inputs, 48000)
        print(f"  {inputs:2} inputs: {native:6.1f} at the mixer's rate, {resampled:6.1f} from 48 kHz")


if __name__ == "__main__":
    main()
