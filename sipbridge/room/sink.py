"""The seam between the room and the media mixer: where each remote audio track's frames go.

The room side knows when tracks come and go and reads each one at the rate and frame size the mixer wants; the
mixer (sipbridge.media) knows how to mix. `sipbridge.media.mixer.MixerInput` already is an `AudioInput`; a call's
`sipbridge.calls.audio.CallAudio` is the sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sipbridge.media.codecs import Pcm


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
