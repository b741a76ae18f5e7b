"""The per-call mixer: every room participant's audio mixed into one stream for the caller, one frame per pull.

The mixer is pure: ``mix_frame()`` returns the next 20 ms frame and does no timekeeping; a ``FrameClock``
(sipbridge.media.cadence) says when to pull. Inputs push audio whenever it arrives, in chunks of any size and
rate; each input keeps its own playout buffer so one participant's hiccup never delays the others.

Bursty inputs: a buffer that starts playing on the first sample and stops when empty plays silence in every
gap between bursts, and a small fixed buffer that overflows on a long burst throws audio away (LiveKit's Go
mixer, 100 ms: 85 restarts and ~3.4 s of silence per 12 s of bursty input, its PR 727). Here an input's buffer
is bounded only by ``max_delay_ms`` and it learns the input's burst size: the most audio that arrived between
two pulls, remembered for 5-10 s. A stopped input starts once it holds a whole burst, and a bursty one waits
one frame more, as margin for a burst that arrives a little late. A steady input therefore plays with at most
one frame of delay, a bursty one with its burst length plus a frame, the least that avoids gaps. A burst
larger than any before causes one gap, after which playout runs that much later and the same pattern plays
through. An input that stays deeper than its burst plus a frame for a second has the excess dropped.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from sipbridge.media.codecs import Pcm
from sipbridge.media.resample import DEFAULT_QUALITY

_INT16_MIN = np.int32(-32768)
_INT16_MAX = np.int32(32767)

BURST_WINDOW_FRAMES = 250
"""The largest burst is remembered over the current and the previous window of this many frames (5 s each)."""

TRIM_AFTER_FRAMES = 50
"""An input deeper than it needs for this many frames in a row (a second) has its excess dropped."""


class MixerInput:
    """One participant's audio on its way into the mix."""

    def __init__(self, mixer_rate: int, frame_samples: int, input_rate: int, max_delay_ms: int, quality: str) -> None:
        self.input_rate = input_rate
        self.frame_samples = frame_samples
        self._resampler = (
            soxr.ResampleStream(input_rate, mixer_rate, 1, dtype="int16", quality=quality)
            if input_rate != mixer_rate
            else None
        )
        self._capacity = mixer_rate * max_delay_ms // 1000
        self._buffer = np.zeros(self._capacity, dtype=np.int16)
        self._size = 0
        self._rate_ratio = mixer_rate / input_rate
        self._arrived = 0.0
        self._burst_window = [1, 1]  # largest burst (frames) in the previous and the current window
        self._window_age = 0
        self._start_countdown: int | None = None
        self._deep_pulls = 0
        self.playing = False
        self.underruns = 0
        """Times this input ran dry while playing (each one a gap in its audio)."""
        self.dropped_samples = 0

    @property
    def buffered_samples(self) -> int:
        return self._size

    @property
    def burst_frames(self) -> int:
        """The most audio (in frames) that arrived between two pulls, lately."""
        return max(self._burst_window)

    def push(self, pcm: Pcm) -> None:
        """Adds audio as it arrives, at the input's own rate."""
        # burstiness is judged on arrivals, before the resampler's own uneven output blocks
        self._arrived += len(pcm) * self._rate_ratio
        self._append(pcm if self._resampler is None else self._resampler.resample_chunk(pcm))

    def _append(self, pcm: Pcm) -> None:
        n = len(pcm)
        overflow = self._size + n - self._capacity
        if overflow > 0:
            self._discard(overflow)
        self._buffer[self._size : self._size + n] = pcm
        self._size += n

    def _discard(self, n: int) -> None:
        n = min(n, self._size)
        self._buffer[: self._size - n] = self._buffer[n : self._size]
        self._size -= n
        self.dropped_samples += n

    def _learn_burst(self) -> None:
        arrived_frames = math.ceil(self._arrived / self.frame_samples - 1e-6)
        self._arrived = 0.0
        self._burst_window[1] = max(self._burst_window[1], arrived_frames)
        self._window_age += 1
        if self._window_age >= BURST_WINDOW_FRAMES:
            self._burst_window = [self._burst_window[1], 1]
            self._window_age = 0

    def _ready(self) -> bool:
        """Whether a stopped input may start: it holds a whole burst, and a bursty input waits one more frame
        so that the next burst may come a little late without a gap."""
        burst = self.burst_frames
        if self._start_countdown is None:
            if self._size == 0 or self._size < min(burst * self.frame_samples, self._capacity):
                return False
            self._start_countdown = 1 if burst > 1 else 0
        if self._start_countdown > 0:
            self._start_countdown -= 1
            return False
        self._start_countdown = None
        return True

    def add_frame_to(self, mix: np.ndarray) -> bool:
        """Adds this input's next frame to the int32 accumulator; False when it contributed nothing."""
        self._learn_burst()
        if not self.playing:
            if not self._ready():
                return False
            self.playing = True
        self._trim_if_too_deep()
        n = self.frame_samples
        take = min(n, self._size)
        mix[:take] += self._buffer[:take]
        self._buffer[: self._size - take] = self._buffer[take : self._size]
        self._size -= take
        if take < n:
            self.playing = False
            self.underruns += 1
        return take > 0

    def _trim_if_too_deep(self) -> None:
        """Drops what stayed above the largest burst plus a frame of margin for a whole second."""
        excess = self._size - (self.burst_frames + 1) * self.frame_samples
        if excess > 0:
            self._deep_pulls += 1
            if self._deep_pulls >= TRIM_AFTER_FRAMES:
                self._deep_pulls = 0
                self._discard(excess)
        else:
            self._deep_pulls = 0


class Mixer:
    """Mixes any number of inputs into ``frame_samples`` frames at ``sample_rate``."""

    def __init__(
        self, sample_rate: int, frame_ms: int = 20, max_delay_ms: int = 1000, quality: str = DEFAULT_QUALITY
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self.max_delay_ms = max_delay_ms
        self.quality = quality
        self._inputs: list[MixerInput] = []
        self._accumulator = np.zeros(self.frame_samples, dtype=np.int32)

    def add_input(self, input_rate: int | None = None) -> MixerInput:
        """A new participant; ``input_rate`` defaults to the mixer's rate (no resampling)."""
        mixer_input = MixerInput(
            self.sample_rate,
            self.frame_samples,
            input_rate or self.sample_rate,
            self.max_delay_ms,
            self.quality,
        )
        self._inputs.append(mixer_input)
        return mixer_input

    def remove_input(self, mixer_input: MixerInput) -> None:
        if mixer_input in self._inputs:
            self._inputs.remove(mixer_input)

    @property
    def inputs(self) -> int:
        return len(self._inputs)

    def mix_frame(self) -> Pcm:
        """The next frame: the saturated sum of every input that has audio, silence when none has."""
        mix = self._accumulator
        mix.fill(0)
        contributors = 0
        for mixer_input in self._inputs:
            contributors += mixer_input.add_frame_to(mix)
        if contributors > 1:  # one input alone cannot leave the int16 range
            np.maximum(mix, _INT16_MIN, out=mix)  # two ufuncs: a third of np.clip's cost on 20 ms frames
            np.minimum(mix, _INT16_MAX, out=mix)
        return mix.astype(np.int16)
