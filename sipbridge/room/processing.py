"""The media-processor hook on the caller's audio, and the self-hosted filling of it: WebRTC noise suppression.

LiveKit's hosted SIP service applies Krisp to calls whose trunk (or `CreateSIPParticipant`) sets `krisp_enabled`.
A bridge running on its own has no Krisp, so the same flag switches on the noise suppressor of the WebRTC audio
processing module that ships inside the livekit rtc SDK: the flag then does something real everywhere. Another
processor (a Krisp binding, say) plugs into the same hook.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from livekit import rtc

from sipbridge.media.codecs import Pcm

APM_RATES = (8000, 16000, 32000, 48000)
"""Sample rates the WebRTC audio processing module accepts."""

APM_FRAME_MS = 10
"""The audio processing module takes exactly 10 ms per call."""


class MediaProcessor(Protocol):
    """Transforms the caller's audio on its way into the room, one frame at a time, at the participant's rate."""

    def process(self, frame: Pcm) -> Pcm:
        """The processed frame; the same length as `frame`."""
        ...

    def close(self) -> None:
        """Releases what the processor holds; called once, when the call leaves the room."""
        ...


class NoiseSuppressor:
    """WebRTC noise suppression (the SDK's `AudioProcessingModule`), fed in the 10 ms pieces it requires.

    A 20 ms frame therefore costs two SDK calls; the cost is paid only by calls that asked for it.
    """

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in APM_RATES:
            raise ValueError(f"noise suppression needs one of {APM_RATES} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self._piece = sample_rate * APM_FRAME_MS // 1000
        self._apm: rtc.AudioProcessingModule | None = rtc.AudioProcessingModule(noise_suppression=True)

    def process(self, frame: Pcm) -> Pcm:
        if self._apm is None:
            raise RuntimeError("noise suppressor used after close()")
        if len(frame) % self._piece:
            raise ValueError(f"frames must be whole multiples of {APM_FRAME_MS} ms ({self._piece} samples)")
        out = np.empty_like(frame)
        for start in range(0, len(frame), self._piece):
            buffer = bytearray(frame[start : start + self._piece].tobytes())
            self._apm.process_stream(rtc.AudioFrame(buffer, self.sample_rate, 1, self._piece))
            out[start : start + self._piece] = np.frombuffer(buffer, dtype=np.int16)
        return out

    def close(self) -> None:
        # the SDK's module has no close(); dropping the last reference releases its native handle at once
        self._apm = None


def processor_for_call(krisp_enabled: bool, sample_rate: int) -> MediaProcessor | None:
    """The processor a call's krisp flag asks for on a self-hosted bridge: noise suppression, or none."""
    return NoiseSuppressor(sample_rate) if krisp_enabled else None
