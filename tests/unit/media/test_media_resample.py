"""The caller's audio towards the room: resampled and cut into whole frames of the room's size."""

from __future__ import annotations

import numpy as np
import pytest

from sipbridge.media.resample import FrameResampler


@pytest.mark.parametrize("in_rate", [8000, 16000, 48000])
def test_frames_come_out_whole_at_the_room_rate_with_the_tone_intact(in_rate: int) -> None:
    resampler = FrameResampler(in_rate, 48000, 960)
    t = np.arange(in_rate * 2) / in_rate
    tone = (np.sin(2 * np.pi * 1004 * t) * 10000).astype(np.int16)
    frames = [f for i in range(0, len(tone), in_rate // 50) for f in resampler.push(tone[i : i + in_rate // 50])]
    assert all(len(f) == 960 for f in frames)
    assert len(frames) >= 100 - 3  # at most ~40 ms held inside soxr
    steady = np.concatenate(frames[25:75]).astype(np.float64)
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(10000 / np.sqrt(2), rel=0.02)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    assert np.fft.rfftfreq(len(steady), 1 / 48000)[np.argmax(spectrum)] == pytest.approx(1004, abs=20)
