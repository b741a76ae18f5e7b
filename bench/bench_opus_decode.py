"""CPU cost of decoding one remote track's 20 ms Opus packet to the call's rate: FFmpeg through PyAV (48 kHz, then
libswresample) against libopus called directly at the call's rate (sipbridge.media.libopus, what the lean room
transport uses).

Real packets: speech-like audio encoded by OpusCodec at 48 kHz, as an agent's track arrives. Each decoder decodes
the same packets in a tight loop; the figure is process CPU time per packet, best of ``--repeat``.

Run: .venv/bin/python bench/bench_opus_decode.py [--frames 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from sipbridge.media.codecs import OpusCodec, Pcm
from sipbridge.media.libopus import OpusDecoder


def _packets(frames: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    t = np.arange(frames * 960) / 48000
    voice = np.sin(2 * np.pi * 180 * t) * 4000 + np.sin(2 * np.pi * 900 * t) * 2000 + rng.normal(0, 500, len(t))
    audio = voice.astype(np.int16)
    encoder = OpusCodec(48000)
    return [encoder.encode(audio[i * 960 : (i + 1) * 960]) for i in range(frames)]


def _per_packet_us(decode: Callable[[bytes], Pcm], packets: list[bytes]) -> float:
    start = time.process_time()
    for payload in packets:
        decode(payload)
    return (time.process_time() - start) / len(packets) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    packets = _packets(args.frames)
    print(f"{'rate':>6} {'PyAV+resample µs':>17} {'libopus µs':>11} {'ratio':>6}")
    for rate in (8000, 16000, 48000):
        pyav = min(_per_packet_us(OpusCodec(rate).decode, packets) for _ in range(args.repeat))
        direct = min(_per_packet_us(OpusDecoder(rate).decode, packets) for _ in range(args.repeat))
        print(f"{rate:>6} {pyav:>17.1f} {direct:>11.1f} {direct / pyav:>6.2f}")


if __name__ == "__main__":
    main()
