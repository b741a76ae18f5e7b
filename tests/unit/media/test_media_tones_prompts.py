"""Call-progress tones, the player, and the generated PIN prompts."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from sipbridge.media.prompts import ENTER_PIN, ENTERING_ROOM, TEXTS, WRONG_PIN, load_prompt, prompt_path
from sipbridge.media.prompts.generate import generate
from sipbridge.media.tones import FramePlayer, dial_tone, ringback_tone


def _peak_frequencies(pcm: np.ndarray, rate: int, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-count:]])


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_dial_tone_is_350_and_440_hz_and_loops_seamlessly(rate: int) -> None:
    tone = dial_tone(rate)
    assert _peak_frequencies(tone, rate, 2) == [350.0, 440.0]
    player = FramePlayer(tone, rate // 50, loop=True)
    frames = np.concatenate([player.next_frame() for _ in range(60)])
    assert not player.finished
    expected = np.concatenate([tone, tone[: rate * 2 // 10]])
    assert np.array_equal(frames, expected)


def test_ringback_is_two_seconds_on_four_off() -> None:
    cycle = ringback_tone(8000)
    assert len(cycle) == 6 * 8000
    assert _peak_frequencies(cycle[:16000], 8000, 2) == [440.0, 480.0]
    assert not cycle[16000:].any()


def test_one_shot_player_pads_the_last_frame_and_finishes() -> None:
    player = FramePlayer(np.ones(250, dtype=np.int16), 160)
    first, second = player.next_frame(), player.next_frame()
    assert first is not None and second is not None
    assert second[:90].all() and not second[90:].any()
    assert player.finished and player.next_frame() is None
    with pytest.raises(ValueError):
        FramePlayer(np.ones(250, dtype=np.int16), 160, loop=True)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_prompts_load_at_the_call_rate(rate: int) -> None:
    for name in (ENTER_PIN, WRONG_PIN, ENTERING_ROOM):
        pcm = load_prompt(name, rate)
        seconds = len(pcm) / rate
        assert 0.8 < seconds < 5.0
        assert 0.5 < np.abs(pcm).max() / 32767 < 0.75  # normalised to -3 dBFS (resampling may overshoot)
        voiced = np.abs(pcm.astype(np.float64)).reshape(-1)[: len(pcm) // 160 * 160].reshape(-1, 160)
        assert (voiced.mean(axis=1) > 300).mean() > 0.4  # mostly speech, not silence
        assert not pcm.flags.writeable


def test_committed_prompts_are_what_the_generator_makes(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng or sox is not installed")
    for name, text in TEXTS.items():
        fresh = tmp_path / f"{name}.wav"
        generate(text, fresh)
        with wave.open(str(fresh)) as a, wave.open(str(prompt_path(name))) as b:
            assert a.readframes(a.getnframes()) == b.readframes(b.getnframes())
