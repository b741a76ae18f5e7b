"""Call-progress tones and a frame-by-frame player for tones and prompts.

A ``FramePlayer`` is what a session's ``source`` points at while the caller should hear a tone or a prompt
instead of the room: it hands out one frame per call and reports when it is done.
"""

from __future__ import annotations

import numpy as np

from sipbridge.media.codecs import Pcm

TONE_LEVEL = 0.1
"""Each component at -20 dBFS, about the -13 dBm0 of ITU-T E.180 call-progress tones."""


def _dual_tone(sample_rate: int, low: float, high: float, seconds: float) -> Pcm:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    wave = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
    return (wave * TONE_LEVEL * 32767).astype(np.int16)


def dial_tone(sample_rate: int) -> Pcm:
    """One second of the North American dial tone (350 + 440 Hz, continuous; loop it); whole periods of both
    components fit in a second, so looping is seamless."""
    return _dual_tone(sample_rate, 350.0, 440.0, 1.0)


def ringback_tone(sample_rate: int) -> Pcm:
    """One 6 s cycle of the North American ringback tone: 440 + 480 Hz for 2 s, then 4 s of silence."""
    cycle = np.zeros(sample_rate * 6, dtype=np.int16)
    cycle[: sample_rate * 2] = _dual_tone(sample_rate, 440.0, 480.0, 2.0)
    return cycle


class FramePlayer:
    """Plays ``pcm`` in frames of ``frame_samples``, once or looped; the last frame is padded with silence."""

    def __init__(self, pcm: Pcm, frame_samples: int, loop: bool = False) -> None:
        if loop and len(pcm) % frame_samples:
            raise ValueError("a looped sound must be a whole number of frames long")
        self._pcm = pcm
        self._frame_samples = frame_samples
        self._loop = loop
        self._position = 0

    @property
    def finished(self) -> bool:
        return not self._loop and self._position >= len(self._pcm)

    def next_frame(self) -> Pcm | None:
        """The next frame, or None once a one-shot sound has been played out."""
        if self.finished:
            return None
        n = self._frame_samples
        frame = self._pcm[self._position : self._position + n]
        self._position += n
        if self._loop and self._position >= len(self._pcm):
            self._position = 0
        if len(frame) < n:
            frame = np.concatenate([frame, np.zeros(n - len(frame), dtype=np.int16)])
        return frame
