"""Received audio played out at a steady pace: jitter buffer, decoder and loss concealment to fixed-size frames.

One `next_frame()` per frame interval, pulled by the receiver's own clock. A lost packet is concealed; when the
buffer has nothing to play the frame is silence. Decoded packets of another duration than a frame (a 30 ms
packet, say) are cut into whole frames, the rest kept for the next pull.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sipbridge.media.codecs import Pcm
from sipbridge.media.concealment import Concealer
from sipbridge.media.jitter import Gap, JitterBuffer, JitterPacket


class Playout:
    def __init__(self, jitter: JitterBuffer, decode: Callable[[bytes], Pcm], frame_samples: int) -> None:
        """``decode``: a payload to PCM at the frame's rate, empty when the payload is not valid."""
        self.jitter = jitter
        self.frame_samples = frame_samples
        self._decode = decode
        self._concealer = Concealer(frame_samples)
        self._pending = np.zeros(0, dtype=np.int16)

    def next_frame(self) -> Pcm:
        """The next ``frame_samples``: decoded, concealed where lost, silent when there is nothing to play."""
        n = self.frame_samples
        while len(self._pending) < n:
            out = self.jitter.pop()
            decoded = self._decode(out.payload) if isinstance(out, JitterPacket) else None
            if decoded is not None and len(decoded):
                pcm = self._concealer.good(decoded)
            elif out is not Gap.EMPTY:  # lost, or not decodable
                pcm = self._concealer.conceal()
            else:
                break
            self._pending = pcm if not len(self._pending) else np.concatenate([self._pending, pcm])
        if len(self._pending) >= n:
            frame, self._pending = self._pending[:n], self._pending[n:]
        else:
            frame = np.concatenate([self._pending, np.zeros(n - len(self._pending), dtype=np.int16)])
            self._pending = self._pending[:0]
        return frame

    @property
    def concealed_frames(self) -> int:
        """Frames made up so far in place of lost packets (call quality: concealed time)."""
        return self._concealer.concealed

    def skip_frame(self) -> None:
        """Lets one frame interval pass unplayed (the receiver's clock fell behind): no decoding, no concealment."""
        if len(self._pending) >= self.frame_samples:
            self._pending = self._pending[self.frame_samples :]
        else:
            self.jitter.pop()
