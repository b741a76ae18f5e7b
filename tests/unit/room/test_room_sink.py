"""MixerSink: remote tracks as inputs of the real media mixer, added and removed by key."""

from __future__ import annotations

import numpy as np
import pytest
from harness.audio import dominant_frequency, rms_dbfs, sine

from sipbridge.media.mixer import Mixer
from sipbridge.room.sink import MixerSink, TrackKey

RATE = 8000
FRAME = RATE // 50


def test_each_track_is_one_mixer_input_until_removed() -> None:
    mixer = Mixer(RATE)
    sink = MixerSink(mixer, RATE)
    agent, other = TrackKey("agent", "TR_a"), TrackKey("other", "TR_b")
    agent_input = sink.add_input(agent)
    sink.add_input(other)
    assert mixer.inputs == 2

    tone = sine(1000.0, 1.0, RATE, dbfs=-20.0)
    mixed = []
    for start in range(0, len(tone), FRAME):
        agent_input.push(tone[start : start + FRAME])
        mixed.append(mixer.mix_frame())
    out = np.concatenate(mixed)[RATE // 10 :]
    assert dominant_frequency(out, RATE) == pytest.approx(1000.0, abs=5.0)
    assert rms_dbfs(out) == pytest.approx(-20.0, abs=1.0)

    sink.remove_input(agent)
    sink.remove_input(agent)  # a second removal is harmless
    assert mixer.inputs == 1


def test_adding_a_key_again_replaces_its_input() -> None:
    mixer = Mixer(RATE)
    sink = MixerSink(mixer, RATE)
    key = TrackKey("agent", "TR_a")
    first = sink.add_input(key)
    second = sink.add_input(key)
    assert first is not second and mixer.inputs == 1
