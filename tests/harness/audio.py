"""Test tones and the measurements that tell whether a tone crossed the bridge intact.

Levels follow AES17: a full-scale sine measures 0 dBFS, so `rms_dbfs(sine(..., dbfs=x))` is x.
Samples are mono int16 numpy arrays, the format both RTP codecs and the LiveKit SDK frames use.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

FULL_SCALE = 32767.0
_FULL_SCALE_SINE_RMS = FULL_SCALE / math.sqrt(2.0)


def sine(freq: float, seconds: float, rate: int = 48000, dbfs: float = -20.0, phase: float = 0.0) -> Samples:
    """`seconds` of a `freq` Hz tone whose RMS level is `dbfs`, starting at `phase` radians."""
    count = round(seconds * rate)
    amplitude = FULL_SCALE * 10.0 ** (dbfs / 20.0)
    t = np.arange(count, dtype=np.float64) / rate
    wave = amplitude * np.sin(2.0 * np.pi * freq * t + phase)
    clipped: Samples = np.clip(np.round(wave), -32768, 32767).astype(np.int16)
    return clipped


def rms_dbfs(samples: npt.NDArray[np.integer]) -> float:
    """RMS level in dBFS; minus infinity for silence or no samples."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20.0 * math.log10(rms / _FULL_SCALE_SINE_RMS) if rms > 0.0 else -math.inf


def dominant_frequency(samples: npt.NDArray[np.integer], rate: int) -> float:
    """Frequency in Hz of the strongest tone.

    Hann window against leakage, then a parabola through the log magnitudes of the peak bin and its
    neighbours places the peak between bins: well under 1 Hz of error on one second of tone.
    """
    if samples.size < 4:
        raise ValueError("need at least 4 samples to find a frequency")
    signal = samples.astype(np.float64)
    signal -= signal.mean()
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    curvature = left - 2.0 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature != 0.0 else 0.0
    return float((peak + offset) * rate / signal.size)


def sounds_like(samples: npt.NDArray[np.integer], rate: int, freq: float, seconds: float = 0.5) -> bool:
    """Whether the last `seconds` of `samples` are the `freq` Hz tone (within 5 Hz, above -35 dBFS): the tone is
    heard now, not silence or concealment."""
    tail = samples[-round(rate * seconds) :]
    if tail.size < round(rate * seconds) or rms_dbfs(tail) < -35.0:
        return False
    return abs(dominant_frequency(tail, rate) - freq) <= 5.0


def trim_silence(samples: Samples, rate: int, threshold_dbfs: float = -50.0, window_ms: float = 10.0) -> Samples:
    """`samples` without the leading and trailing windows quieter than `threshold_dbfs`.

    Received audio starts with silence while a connection comes up and may end with some; measuring
    only the sounding part keeps level and frequency checks honest.
    """
    window = max(1, round(rate * window_ms / 1000.0))
    count = samples.size // window
    if count == 0:
        return samples[:0]
    frames = samples[: count * window].astype(np.float64).reshape(count, window)
    levels = np.sqrt(np.mean(np.square(frames), axis=1))
    loud = np.flatnonzero(levels >= _FULL_SCALE_SINE_RMS * 10.0 ** (threshold_dbfs / 20.0))
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * window : (loud[-1] + 1) * window]


def band_db(samples: npt.NDArray[np.integer], rate: int, freq: float) -> float:
    """Energy within ±4 Hz of `freq`, in dB (relative: for comparing bands of one recording)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(10 * np.log10(spectrum[(freqs > freq - 4) & (freqs < freq + 4)].sum() + 1e-9))


def tone_margin(samples: npt.NDArray[np.integer], rate: int, freq: float, others: list[float]) -> float:
    """How many dB `freq` stands above the strongest of `others` (other calls' tones: a leak would show there)."""
    return band_db(samples, rate, freq) - max(band_db(samples, rate, f) for f in others)


def spectral_peaks(samples: npt.NDArray[np.integer], rate: int, count: int = 3) -> str:
    """The strongest spectral peaks, to tell a distorted tone from another tone leaking in (for failure messages)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    picked: list[int] = []
    for k in sorted(range(1, len(spectrum) - 1), key=lambda k: spectrum[k], reverse=True):
        if all(abs(k - p) > 3 for p in picked):
            picked.append(k)
        if len(picked) == count:
            break
    return "peaks " + ", ".join(
        f"{freqs[k]:.0f} Hz ({20 * np.log10(spectrum[k] / spectrum[picked[0]]):.0f} dB)" for k in picked
    )


def longest_gap_ms(samples: Samples, rate: int, threshold_dbfs: float = -45.0, window_ms: float = 10.0) -> float:
    """The longest run of silence (10 ms windows below `threshold_dbfs`) inside a recording of a steady tone,
    in ms: what a listener notices as a drop-out. Silence before the tone starts and after it ends is not a gap."""
    window = max(1, int(rate * window_ms / 1000))
    usable = samples[: len(samples) // window * window].astype(np.float64)
    if usable.size == 0:
        return 0.0
    rms = np.sqrt(np.mean(usable.reshape(-1, window) ** 2, axis=1))
    loud = rms > FULL_SCALE / math.sqrt(2.0) * 10 ** (threshold_dbfs / 20.0)
    if not loud.any():
        return math.inf
    inside = loud[np.argmax(loud) : len(loud) - np.argmax(loud[::-1])]
    longest = run = 0
    for is_loud in inside:
        run = 0 if is_loud else run + 1
        longest = max(longest, run)
    return longest * window_ms


def goertzel_dbfs(samples: npt.NDArray[np.integer], rate: int, freq: float) -> float:
    """The level in dBFS (as `rms_dbfs` measures a sine) of the `freq` Hz component of `samples`, by the Goertzel
    recurrence: one frequency's DFT term, the way DTMF receivers look for their eight tones."""
    coefficient = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    previous = before = 0.0
    for x in samples.astype(np.float64):
        previous, before = float(x) + coefficient * previous - before, previous
    power = previous * previous + before * before - coefficient * previous * before
    amplitude = 2.0 * math.sqrt(max(power, 0.0)) / max(samples.size, 1)
    return 20.0 * math.log10(amplitude / FULL_SCALE) if amplitude > 0.0 else -math.inf
