"""The mixer, driven frame by frame as its cadence would drive it: levels, delay, saturation, bursts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sipbridge.media.mixer import Mixer

FRAME_S = 0.02


def _tone(freq: float, rate: int, seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def _amplitude(signal: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of ``freq`` in ``signal`` (a whole number of seconds, so the bin is exact)."""
    t = np.arange(len(signal)) / rate
    return float(2 * np.abs(np.dot(signal.astype(np.float64), np.exp(-2j * np.pi * freq * t))) / len(signal))


def _lag(reference: np.ndarray, output: np.ndarray, max_lag: int) -> int:
    ref = reference.astype(np.float64)
    out = output.astype(np.float64)
    n = min(len(ref), len(out) - max_lag)
    scores = [np.dot(ref[:n], out[lag : lag + n]) for lag in range(max_lag)]
    return int(np.argmax(scores))


@pytest.mark.parametrize(
    ("rate", "input_rate", "resampler_delay"),
    # soxr "LQ" streams hold audio back in blocks: measured up to 20 ms for 48 -> 16 kHz, 40 ms for 48 -> 8 kHz
    [(16000, 16000, 0.0), (8000, 8000, 0.0), (16000, 48000, 0.020), (8000, 48000, 0.040)],
)
def test_two_tones_come_out_at_their_levels_with_at_most_one_frame_of_delay(
    rate: int, input_rate: int, resampler_delay: float
) -> None:
    mixer = Mixer(rate)
    low, high = mixer.add_input(input_rate), mixer.add_input(input_rate)
    seconds = 3
    a = _tone(440, input_rate, seconds, 8000)
    b = _tone(1000, input_rate, seconds, 6000)
    step = input_rate // 50
    phase = 0.007  # each input frame arrives 7 ms after a pull, 13 ms before the next one
    out = []
    for k in range(seconds * 50 + 10):
        out.append(mixer.mix_frame())  # pull at k * 20 ms
        if k * step < len(a):  # frame k arrives at k * 20 ms + phase
            low.push(a[k * step : (k + 1) * step])
            high.push(b[k * step : (k + 1) * step])
    mixed = np.concatenate(out)
    steady = mixed[rate : rate * 2]  # the second second
    assert _amplitude(steady, 440, rate) == pytest.approx(8000, rel=0.02)
    assert _amplitude(steady, 1000, rate) == pytest.approx(6000, rel=0.02)
    reference = _tone(440, rate, seconds, 8000).astype(np.int32) + _tone(1000, rate, seconds, 6000)
    lag_s = _lag(reference, mixed, rate // 8) / rate
    added_delay = lag_s - phase  # from each frame's arrival to its playout
    assert added_delay <= FRAME_S + resampler_delay + 1e-9
    assert low.underruns <= 1 and high.underruns <= 1  # the one underrun: when the tones end


def test_sum_saturates_instead_of_wrapping() -> None:
    mixer = Mixer(8000)
    for _ in range(3):
        mixer.add_input().push(np.full(160, 30000, dtype=np.int16))
    negative = mixer.add_input()
    negative.push(np.full(160, -32768, dtype=np.int16))
    mixer.remove_input(negative)
    assert np.all(mixer.mix_frame() == 32767)


def test_silence_when_nobody_speaks_and_inputs_come_and_go() -> None:
    mixer = Mixer(8000)
    assert not np.any(mixer.mix_frame())
    first = mixer.add_input()
    assert not np.any(mixer.mix_frame())  # joined, not yet speaking
    first.push(np.full(160, 100, dtype=np.int16))
    second = mixer.add_input()
    second.push(np.full(160, 50, dtype=np.int16))
    assert np.all(mixer.mix_frame() == 150)
    mixer.remove_input(first)
    second.push(np.full(160, 50, dtype=np.int16))
    assert np.all(mixer.mix_frame() == 50)
    assert mixer.inputs == 1


def _replay_bursts(chunk_sizes: list[int], jitter_s: float, seed: int) -> tuple[list[bool], float, Mixer]:
    """A producer makes one 20 ms frame per 20 ms but delivers them in chunks, each chunk when its last frame
    is made plus random lateness. Returns, per pull after the first audio came out, whether it was silent, and
    the largest delay of a frame from being made to being played."""
    rng = random.Random(seed)
    mixer = Mixer(8000)
    room = mixer.add_input()
    arrivals: list[tuple[float, int, int]] = []  # (time, first frame, frame count)
    frame = 0
    for size in chunk_sizes:
        arrivals.append(((frame + size) * FRAME_S + rng.uniform(0, jitter_s), frame, size))
        frame += size
    total_frames = frame
    arrivals.sort()
    silent: list[bool] = []
    worst_delay = 0.0
    next_arrival = 0
    started = False
    played = 0
    for pull in range(total_frames + 100):
        now = pull * FRAME_S
        while next_arrival < len(arrivals) and arrivals[next_arrival][0] <= now:
            _, first, count = arrivals[next_arrival]
            pcm = np.concatenate([np.full(160, 1000 + first + i, np.int16) for i in range(count)])
            room.push(pcm)
            next_arrival += 1
        out = mixer.mix_frame()
        if out.any():
            started = True
            made_at = (int(out[0]) - 1000 + 1) * FRAME_S  # frame f is finished at (f + 1) * 20 ms
            worst_delay = max(worst_delay, now - made_at)
            played += 1
        if started and played < total_frames:
            silent.append(not out.any())
    return silent, worst_delay, mixer


def test_bursty_input_plays_without_a_single_silent_frame() -> None:
    """The pattern of LiveKit's PR 727: chunks longer than a 100 ms buffer (here 200 ms), arriving late by up to
    15 ms. LiveKit's Go mixer with its 100 ms input buffer played ~3.4 s of silence per 12 s of such input."""
    silent, worst_delay, mixer = _replay_bursts([10] * 60, jitter_s=0.015, seed=3)
    assert len(silent) > 590
    assert sum(silent) == 0
    (room,) = mixer._inputs
    assert room.underruns == 1 and room.dropped_samples == 0  # the one underrun: when the audio ends
    # a frame waits at most for the rest of its burst plus two frames (one pull of phase, one of margin)
    assert worst_delay <= (10 + 2) * FRAME_S + 1e-9


def test_bursts_growing_during_a_call_cost_one_gap_each_time_then_play_through() -> None:
    rng = random.Random(11)
    sizes = [5, 5, 9] + [rng.randint(3, 9) for _ in range(100)]
    silent, _, mixer = _replay_bursts(sizes, jitter_s=0.015, seed=4)
    (room,) = mixer._inputs
    first_gap_end = max(i for i, s in enumerate(silent) if s) if any(silent) else 0
    assert room.underruns <= 2
    assert first_gap_end < 50  # gaps only while the largest burst is learned, in the first second
    assert sum(silent) <= 9


def test_a_one_off_backlog_is_trimmed_back_to_low_delay() -> None:
    mixer = Mixer(8000)
    room = mixer.add_input()
    room.push(np.ones(160 * 30, dtype=np.int16))  # 600 ms arrive at once after a stall
    for _ in range(800):  # then steady for 16 s
        room.push(np.ones(160, dtype=np.int16))
        mixer.mix_frame()
    assert room.buffered_samples <= 2 * 160
    assert room.dropped_samples > 0


def test_a_bursty_participant_does_not_delay_a_steady_one() -> None:
    mixer = Mixer(8000)
    steady, bursty = mixer.add_input(), mixer.add_input()
    for pull in range(300):
        if pull % 10 == 9:  # ten frames at once every 200 ms
            bursty.push(np.full(1600, 3, np.int16))
        steady.push(np.full(160, 1000 + pull, np.int16))
        out = mixer.mix_frame()
        assert int(out[0]) - (3 if bursty.playing else 0) == 1000 + pull  # the frame pushed just before
    assert steady.underruns == 0
