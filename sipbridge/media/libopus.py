"""Opus decoded by libopus itself, straight to the rate the call needs.

FFmpeg's libopus decoder (what `OpusCodec` uses through PyAV) always gives 48 kHz, which is then resampled to the
call's rate. libopus runs its decoder at 8, 12, 16, 24 or 48 kHz itself. bench/bench_opus_decode.py, speech-like
20 ms packets: ~32 µs per packet through PyAV and the resampler at 8 or 16 kHz, ~19 µs here (0.6 of it); at 48 kHz
~23 against ~20 µs. The lean room transport decodes every remote track 50 times a second, so this saves ~0.7 ms of
CPU per second per remote track at a phone's rate.

The library is the copy PyAV's wheels bundle (`av.libs`, what FFmpeg already loaded into the process), or the
system's libopus when PyAV was built against that.
"""

from __future__ import annotations

import ctypes
import weakref
from pathlib import Path

import av
import numpy as np

from sipbridge.media.codecs import Pcm

RATES = (8000, 12000, 16000, 24000, 48000)
"""The rates libopus decodes to."""
MAX_PACKET_MS = 120
"""The longest audio one Opus packet may carry."""


def _load() -> ctypes.CDLL:
    bundled = sorted((Path(av.__file__).parent.parent / "av.libs").glob("libopus-*.so*"))
    for candidate in [*map(str, bundled), "libopus.so.0"]:
        try:
            library = ctypes.CDLL(candidate)
        except OSError:
            continue
        library.opus_decoder_create.restype = ctypes.c_void_p
        library.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        library.opus_decode.restype = ctypes.c_int
        library.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        library.opus_decoder_destroy.restype = None
        library.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        return library
    raise ImportError("libopus not found: neither PyAV's bundled copy nor libopus.so.0 (apt install libopus0)")


_LIBOPUS = _load()


class OpusDecoder:
    """One stream's decoder: Opus payloads to mono int16 PCM at `sample_rate`."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in RATES:
            raise ValueError(f"libopus decodes to {RATES} Hz, not {sample_rate}")
        error = ctypes.c_int()
        self._state = _LIBOPUS.opus_decoder_create(sample_rate, 1, ctypes.byref(error))
        if error.value != 0 or not self._state:
            raise RuntimeError(f"opus_decoder_create failed ({error.value})")
        weakref.finalize(self, _LIBOPUS.opus_decoder_destroy, self._state)
        self._capacity = sample_rate * MAX_PACKET_MS // 1000
        self._out = np.zeros(self._capacity, dtype=np.int16)
        self._out_address = self._out.ctypes.data

    def decode(self, payload: bytes) -> Pcm:
        """The decoded samples; empty when the payload is not valid Opus (the caller conceals)."""
        if not payload:  # libopus would conceal a whole MAX_PACKET_MS for it
            return self._out[:0].copy()
        count = _LIBOPUS.opus_decode(self._state, payload, len(payload), self._out_address, self._capacity, 0)
        if count <= 0:
            return self._out[:0].copy()
        return self._out[:count].copy()
