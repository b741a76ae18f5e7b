"""Each codec round-trips a 1004 Hz tone (the standard test tone: not a sub-multiple of the sampling rate)."""

from __future__ import annotations

import numpy as np
import pytest

from sipbridge.media.codecs import G711, create_codec

TONE_HZ = 1004.0


def _tone(sample_rate: int, seconds: float = 1.0, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (np.sin(2 * np.pi * TONE_HZ * t) * amplitude).astype(np.int16)


def _round_trip(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    codec = create_codec(name)
    tone = _tone(codec.sample_rate)
    frame = codec.sample_rate // 50
    decoded = [codec.decode(codec.encode(tone[i : i + frame])) for i in range(0, len(tone), frame)]
    return tone, np.concatenate(decoded), codec.sample_rate


def _snr_db(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> float:
    """SNR after the best alignment (codec delay) and gain, skipping the first 100 ms of start-up."""
    best = -np.inf
    ref = reference.astype(np.float64)
    out = decoded.astype(np.float64)
    skip = len(ref) // 10
    for lag in range(max_lag):
        a = ref[skip : len(out) - lag]
        b = out[skip + lag : skip + lag + len(a)]
        gain = float(np.dot(a, b) / np.dot(a, a))
        error = b - gain * a
        best = max(best, 10 * np.log10(np.dot(gain * a, gain * a) / np.dot(error, error)))
    return float(best)


@pytest.mark.parametrize(("name", "min_snr_db"), [("PCMU", 36.0), ("PCMA", 36.0), ("G722", 45.0)])
def test_waveform_codecs_round_trip_a_tone(name: str, min_snr_db: float) -> None:
    tone, decoded, _ = _round_trip(name)
    assert len(decoded) == len(tone)
    assert _snr_db(tone, decoded, max_lag=64) >= min_snr_db


def test_opus_round_trip_keeps_the_tone_and_its_level() -> None:
    """Opus is perceptual, so its waveform SNR is low at voice bitrates; the tone must dominate instead."""
    tone, decoded, rate = _round_trip("opus")
    assert len(decoded) == len(tone)
    steady = decoded[rate // 5 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady)))) ** 2
    freqs = np.fft.rfftfreq(len(steady), 1 / rate)
    near = np.abs(freqs - TONE_HZ) < 20
    tone_to_rest_db = 10 * np.log10(spectrum[near].sum() / spectrum[~near].sum())
    assert tone_to_rest_db > 30
    rms_ratio = np.sqrt(np.mean(steady**2)) / np.sqrt(np.mean(tone.astype(np.float64) ** 2))
    assert 0.9 < rms_ratio < 1.1
    assert _snr_db(tone, decoded, max_lag=1200) >= 12.0


def test_g711_payload_sizes_and_silence() -> None:
    for name, silence_byte in (("PCMU", 0xFF), ("PCMA", 0xD5)):
        codec = G711(name)
        payload = codec.encode(np.zeros(160, dtype=np.int16))
        assert payload == bytes([silence_byte]) * 160
        assert np.all(np.abs(codec.decode(payload)) <= 8)


def test_g722_uses_an_8khz_rtp_clock_for_16khz_audio() -> None:
    codec = create_codec("g722")
    assert (codec.sample_rate, codec.clock_rate) == (16000, 8000)
    assert len(codec.encode(_tone(16000, 0.02))) == 160


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError):
        create_codec("G729")


def test_g722_packets_longer_than_20ms_are_concatenated_frames() -> None:
    whole, split = create_codec("G722"), create_codec("G722")
    tone = _tone(16000, 0.04)
    assert whole.supports_ptime(40) and not whole.supports_ptime(30)
    assert whole.encode(tone) == split.encode(tone[:320]) + split.encode(tone[320:])
    with pytest.raises(ValueError):
        whole.encode(tone[:480])


def test_ptime_support_per_codec() -> None:
    assert create_codec("PCMU").supports_ptime(30)
    opus = create_codec("opus")
    assert opus.supports_ptime(20) and not opus.supports_ptime(40)


@pytest.mark.parametrize("name", ["G722", "opus"])
def test_undecodable_payload_gives_no_samples(name: str) -> None:
    codec = create_codec(name)
    result = codec.decode(b"")
    assert result.dtype == np.int16 and len(result) == 0
