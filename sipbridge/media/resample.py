"""Streaming resampling into fixed-size frames (soxr).

soxr's streaming resampler holds audio back in internal blocks: measured at 20 ms input chunks, quality "HQ"
delays 48 kHz -> 8 kHz by ~110 ms and "LQ" by ~30 ms (48 -> 16 kHz: 12 ms either way). The default here is "LQ"
(still a proper anti-aliasing filter), and the cheapest wiring avoids resampling altogether by asking the room
side for audio at the codec's rate.
"""

from __future__ import annotations

import numpy as np
import soxr

from sipbridge.media.codecs import Pcm

DEFAULT_QUALITY = "LQ"


class FrameResampler:
    """Resamples a stream of chunks of any size and hands out whole frames of ``frame_samples`` at the new rate."""

    def __init__(self, in_rate: int, out_rate: int, frame_samples: int, quality: str = DEFAULT_QUALITY) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.frame_samples = frame_samples
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality) if in_rate != out_rate else None
        )
        self._pending = np.zeros(0, dtype=np.int16)

    def push(self, pcm: Pcm) -> list[Pcm]:
        converted = pcm if self._stream is None else self._stream.resample_chunk(pcm)
        if not len(self._pending) and len(converted) == self.frame_samples:
            return [converted]
        self._pending = np.concatenate([self._pending, converted])
        whole = len(self._pending) // self.frame_samples * self.frame_samples
        frames = [self._pending[i : i + self.frame_samples] for i in range(0, whole, self.frame_samples)]
        self._pending = self._pending[whole:]
        return frames
