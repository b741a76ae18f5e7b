"""Loss concealment bridges a short gap and fades a long one to silence."""

from __future__ import annotations

import numpy as np

from sipbridge.media.concealment import Concealer


def test_concealment_fades_to_silence() -> None:
    concealer = Concealer(160)
    frame = np.full(160, 1000, dtype=np.int16)
    assert concealer.good(frame) is frame
    levels = [int(concealer.conceal()[0]) for _ in range(5)]
    assert levels == [500, 250, 125, 0, 0]
    concealer.good(frame)
    assert int(concealer.conceal()[0]) == 500  # a good frame restores full level


def test_concealment_before_any_audio_is_silence() -> None:
    assert not np.any(Concealer(320).conceal())
