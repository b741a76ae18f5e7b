"""In-band DTMF: generated tones are found by the Goertzel detector, once per press, and nothing else is."""

from __future__ import annotations

import numpy as np
import pytest

from sipbridge.media.codecs import create_codec
from sipbridge.media.inband_dtmf import GoertzelDetector, dtmf_tone


@pytest.mark.parametrize("sample_rate", [8000, 16000])
def test_every_key_is_detected_once(sample_rate: int) -> None:
    detector = GoertzelDetector(sample_rate)
    found: list[str] = []
    for key in "0123456789*#ABCD":
        found += detector.feed(dtmf_tone(key, sample_rate, duration_ms=1000))
        found += detector.feed(np.zeros(sample_rate // 10, dtype=np.int16))
    assert "".join(found) == "0123456789*#ABCD"


def test_tones_survive_g711_and_odd_chunk_sizes() -> None:
    codec = create_codec("PCMA")
    signal = np.concatenate([dtmf_tone("9", 8000, 80), np.zeros(800, np.int16), dtmf_tone("*", 8000, 80)])
    coded = codec.decode(codec.encode(signal))
    detector = GoertzelDetector(8000)
    found = [d for i in range(0, len(coded), 77) for d in detector.feed(coded[i : i + 77])]
    assert found == ["9", "*"]


def test_speech_band_tone_and_noise_are_not_digits() -> None:
    detector = GoertzelDetector(8000)
    t = np.arange(8000) / 8000
    assert detector.feed((np.sin(2 * np.pi * 1004 * t) * 8000).astype(np.int16)) == []
    noise = np.random.default_rng(7).normal(0, 3000, 8000).astype(np.int16)
    assert detector.feed(noise) == []
    assert detector.feed(dtmf_tone("5", 8000, duration_ms=20)) == []  # shorter than a valid press
