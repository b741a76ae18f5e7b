"""In-band DTMF: the dual tones themselves, generated for `audio_dtmf` and detected for peers that send no
telephone-events.

Detection evaluates the eight DTMF frequencies exactly (a Goertzel filter bank done as one small matrix
product per 20 ms block, Hann-windowed against leakage between neighbouring rows). A block holds a digit when
one row and one column tone carry most of its energy, with neither a runner-up in the same group nor too much
twist; a digit is reported once when it has been present in two consecutive blocks
(40 ms, the shortest valid press).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sipbridge.media.codecs import Pcm

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def dtmf_tone(digit: str, sample_rate: int, duration_ms: int = 100, level: float = 0.25) -> Pcm:
    """The two sine tones of ``digit``, each at ``level`` of full scale."""
    row, column = next((r, c) for r, keys in enumerate(KEYPAD) for c, key in enumerate(keys) if key == digit)
    t = np.arange(sample_rate * duration_ms // 1000) / sample_rate
    wave = np.sin(2 * np.pi * ROWS[row] * t) + np.sin(2 * np.pi * COLUMNS[column] * t)
    return (wave * level * 32767).astype(np.int16)


class GoertzelDetector:
    """Finds DTMF digits in a stream of PCM fed in any chunk sizes; ``feed`` returns the digits that began."""

    MIN_ENERGY = 1e5
    """Per-block energy below which a block is treated as silence (about -50 dBFS at 8 kHz)."""

    def __init__(self, sample_rate: int) -> None:
        self._block = sample_rate // 50
        n = np.arange(self._block)
        window = np.hanning(self._block)
        frequencies = np.array(ROWS + COLUMNS)
        phase = -2j * np.pi * np.outer(frequencies, n) / sample_rate
        self._bank: NDArray[np.complex128] = (window * np.exp(phase)).astype(np.complex128)
        window_energy = float(np.sum(window**2))
        self._window = window
        self._tone_scale = 2 * window_energy / float(np.sum(window)) ** 2
        self._pending = np.zeros(0, dtype=np.int16)
        self._previous: str | None = None
        self._reported: str | None = None

    def feed(self, pcm: Pcm) -> list[str]:
        self._pending = np.concatenate([self._pending, pcm])
        digits: list[str] = []
        while len(self._pending) >= self._block:
            block, self._pending = self._pending[: self._block], self._pending[self._block :]
            digit = self._classify(block.astype(np.float64))
            if digit is not None and digit == self._previous and digit != self._reported:
                digits.append(digit)
                self._reported = digit
            if digit is None:
                self._reported = None
            self._previous = digit
        return digits

    def _classify(self, block: NDArray[np.float64]) -> str | None:
        windowed_energy = float(np.sum((block * self._window) ** 2))
        if windowed_energy < self.MIN_ENERGY:
            return None
        share = np.abs(self._bank @ block) ** 2 * self._tone_scale / windowed_energy
        rows, columns = share[:4], share[4:]
        row, column = int(np.argmax(rows)), int(np.argmax(columns))
        row_share, column_share = float(rows[row]), float(columns[column])
        if row_share + column_share < 0.8 or min(row_share, column_share) < 0.15:
            return None
        if np.sort(rows)[-2] > row_share / 4 or np.sort(columns)[-2] > column_share / 4:
            return None
        return KEYPAD[row][column]
