"""The seam between the room and the media mixer: where each remote audio track's frames go.

The room side knows when tracks come and go and reads each one at the rate and frame size the mixer wants; the
mixer (sipbridge.media) knows how to mix. `sipbridge.media.mixer.MixerInput` already is an `AudioInput`, and
`MixerSink` is the sink over a call's `Mixer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sipbridge.media.codecs import Pcm
from sipbridge.media.mixer import Mixer, MixerInput


@dataclass(frozen=True)
class TrackKey:
    """One remote audio track: whose it is and which of theirs."""

    participant_identity: str
    track_sid: str


class AudioInput(Protocol):
    def push(self, pcm: Pcm) -> None:
        """Takes the track's next frame (mono int16, at the participant's `inbound_rate`)."""
        ...


class AudioSink(Protocol):
    """Receives the remote tracks of one call; `add_input` and `remove_input` come in pairs per key."""

    def add_input(self, key: TrackKey) -> AudioInput: ...

    def remove_input(self, key: TrackKey) -> None: ...


class MixerSink:
    """The AudioSink of a call whose room audio goes into a `sipbridge.media.mixer.Mixer`: one mixer input per
    remote track, fed at `input_rate` (the participant's `subscribe_rate`; the mixer's own rate avoids
    resampling)."""

    def __init__(self, mixer: Mixer, input_rate: int) -> None:
        self._mixer = mixer
        self._input_rate = input_rate
        self._inputs: dict[TrackKey, MixerInput] = {}

    def add_input(self, key: TrackKey) -> MixerInput:
        self.remove_input(key)
        self._inputs[key] = self._mixer.add_input(self._input_rate)
        return self._inputs[key]

    def remove_input(self, key: TrackKey) -> None:
        mixer_input = self._inputs.pop(key, None)
        if mixer_input is not None:
            self._mixer.remove_input(mixer_input)
