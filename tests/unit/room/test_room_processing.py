"""The media-processor hook's self-hosted filling: the SDK's WebRTC noise suppression on the caller's audio."""

from __future__ import annotations

import numpy as np
import pytest
from harness.audio import rms_dbfs, sine

from sipbridge.room.processing import NoiseSuppressor, processor_for_call

FRAME_MS = 20


def _frames(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    n = rate * FRAME_MS // 1000
    return [samples[i : i + n] for i in range(0, len(samples) - n + 1, n)]


def _white_noise(seconds: float, rate: int, dbfs: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    rms = 32767.0 / np.sqrt(2.0) * 10.0 ** (dbfs / 20.0)
    return np.clip(rng.normal(0.0, rms, round(seconds * rate)), -32768, 32767).astype(np.int16)


def test_krisp_off_means_no_processor() -> None:
    assert processor_for_call(False, 48000) is None


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_noise_suppression_lowers_white_noise(rate: int) -> None:
    noise = _white_noise(3.0, rate, -30.0)
    suppressor = processor_for_call(True, rate)
    assert isinstance(suppressor, NoiseSuppressor)
    try:
        processed = np.concatenate([suppressor.process(frame) for frame in _frames(noise, rate)])
    finally:
        suppressor.close()
    # the suppressor adapts within the first second; judge the steady state
    settled = slice(rate, None)
    assert rms_dbfs(noise[settled]) == pytest.approx(-30.0, abs=0.5)
    assert rms_dbfs(processed[settled]) < rms_dbfs(noise[settled]) - 10.0


def test_noise_suppression_keeps_a_tone_that_comes_and_goes() -> None:
    """Speech-like on/off sound passes at its level (a steady tone would itself be learnt as noise)."""
    rate = 16000
    seconds = 4.0
    sounding = (np.arange(round(seconds * rate)) / rate * 2.5) % 1.0 < 0.5  # 200 ms on, 200 ms off
    tone = (sine(440.0, seconds, rate, dbfs=-20.0) * sounding).astype(np.int16)
    suppressor = NoiseSuppressor(rate)
    try:
        processed = np.concatenate([suppressor.process(frame) for frame in _frames(tone, rate)])
    finally:
        suppressor.close()
    sounding[: 2 * rate] = False
    assert rms_dbfs(processed[sounding]) == pytest.approx(-20.0, abs=1.5)


def test_noise_suppressor_rejects_rates_and_frame_lengths_it_cannot_take() -> None:
    with pytest.raises(ValueError):
        NoiseSuppressor(44100)
    suppressor = NoiseSuppressor(8000)
    try:
        with pytest.raises(ValueError):
            suppressor.process(np.zeros(100, dtype=np.int16))
    finally:
        suppressor.close()
    with pytest.raises(RuntimeError):
        suppressor.process(np.zeros(160, dtype=np.int16))
