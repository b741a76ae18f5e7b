"""The tone generator and the measurements later interop tests rely on to judge received audio."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness.audio import dominant_frequency, rms_dbfs, sine, trim_silence
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("dbfs", [0.0, -3.0, -20.0, -40.0])
def test_sine_measures_at_its_requested_level(dbfs: float) -> None:
    assert rms_dbfs(sine(1000.0, 1.0, 48000, dbfs)) == pytest.approx(dbfs, abs=0.05)


def test_full_scale_sine_stays_within_int16() -> None:
    tone = sine(997.0, 0.5, 8000, 0.0)
    assert tone.dtype == np.int16
    assert int(tone.max()) == 32767
    assert int(tone.min()) >= -32768


def test_silence_and_nothing_are_minus_infinity() -> None:
    assert rms_dbfs(np.zeros(480, dtype=np.int16)) == -math.inf
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == -math.inf


@settings(max_examples=60, deadline=None)
@given(
    freq=st.floats(min_value=100.0, max_value=3800.0),
    rate=st.sampled_from([8000, 16000, 48000]),
    phase=st.floats(min_value=0.0, max_value=2 * math.pi),
)
def test_dominant_frequency_within_one_hertz_on_a_second(freq: float, rate: int, phase: float) -> None:
    assert dominant_frequency(sine(freq, 1.0, rate, -20.0, phase), rate) == pytest.approx(freq, abs=1.0)


def test_dominant_frequency_ignores_weaker_tone_and_noise() -> None:
    rng = np.random.default_rng(7)
    mix = sine(440.0, 1.0, 48000, -12.0).astype(np.float64) + sine(1000.0, 1.0, 48000, -30.0)
    mix += rng.normal(0.0, 300.0, mix.size)
    assert dominant_frequency(mix.astype(np.int16), 48000) == pytest.approx(440.0, abs=1.0)


def test_dominant_frequency_on_a_short_window_is_still_close() -> None:
    # 100 ms gives 10 Hz bins; interpolation keeps the error to a fraction of one.
    assert dominant_frequency(sine(1234.5, 0.1, 8000), 8000) == pytest.approx(1234.5, abs=2.0)


def test_trim_silence_keeps_only_the_sounding_part() -> None:
    rate = 16000
    quiet = np.zeros(rate // 4, dtype=np.int16)
    tone = sine(500.0, 0.5, rate, -20.0)
    trimmed = trim_silence(np.concatenate([quiet, tone, quiet]), rate)
    assert abs(trimmed.size - tone.size) <= rate // 100
    assert rms_dbfs(trimmed) == pytest.approx(-20.0, abs=0.2)


def test_trim_silence_of_silence_is_empty() -> None:
    assert trim_silence(np.zeros(4800, dtype=np.int16), 48000).size == 0
    assert trim_silence(np.zeros(10, dtype=np.int16), 48000).size == 0
