"""libopus decoding straight to a phone codec's rate: what OpusCodec (FFmpeg) encodes comes back as the same tone."""

from __future__ import annotations

import numpy as np
import pytest

from sipbridge.media.codecs import OpusCodec
from sipbridge.media.libopus import OpusDecoder


def _tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_a_tone_comes_back_at_the_rate_asked_for(rate: int) -> None:
    encoder, decoder = OpusCodec(48000), OpusDecoder(rate)
    tone = _tone(48000, 1.0)
    decoded = np.concatenate([decoder.decode(encoder.encode(tone[i : i + 960])) for i in range(0, len(tone), 960)])
    assert len(decoded) == rate  # 20 ms in, 20 ms out, at the decoder's rate
    tail = decoded[rate // 2 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    assert np.fft.rfftfreq(len(tail), 1 / rate)[np.argmax(spectrum)] == pytest.approx(440.0, abs=3.0)
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.2)


def test_what_is_not_opus_decodes_to_nothing() -> None:
    decoder = OpusDecoder(8000)
    assert len(decoder.decode(b"")) == 0
    assert len(decoder.decode(b"\xff\xff\xff")) == 0  # a code-3 packet with a frame count it cannot have


def test_only_rates_libopus_decodes_to() -> None:
    with pytest.raises(ValueError, match="44100"):
        OpusDecoder(44100)
