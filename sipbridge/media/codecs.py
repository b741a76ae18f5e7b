"""Audio codecs for the RTP side: PCMU, PCMA, G.722 and Opus.

Every codec turns 16-bit mono PCM at its own ``sample_rate`` into RTP payloads and back. One instance
belongs to one call, because G.722 and Opus carry state from frame to frame.

G.711 runs on numpy lookup tables that are filled once, at import, by FFmpeg's ``pcm_mulaw`` / ``pcm_alaw``
(through aiortc's codec classes): the tables give bit-exact FFmpeg output at ~2 µs per frame instead of ~20 µs
for a codec-context round trip per packet. G.722 and Opus call FFmpeg through PyAV directly, reusing one
input frame: a 20 ms G.722 frame costs ~12 µs to encode and ~12 µs to decode, against ~44 µs and ~19 µs
through aiortc's wrappers (which build a frame and run a resampler on every packet). A numpy G.722 is no
option: its ADPCM adapts sample by sample, so it cannot be vectorised.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Protocol, cast

import av
import numpy as np
from aiortc.codecs.g711 import PcmaDecoder, PcmaEncoder, PcmuDecoder, PcmuEncoder
from aiortc.jitterbuffer import JitterFrame
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from numpy.typing import NDArray

Pcm = NDArray[np.int16]
"""Mono 16-bit PCM samples."""


class Codec(Protocol):
    """What the media path needs from a codec."""

    name: str
    sample_rate: int
    """Rate of the PCM the codec takes and gives."""
    clock_rate: int
    """Rate of the RTP timestamp (8000 for G.722 although its audio is 16 kHz)."""

    def supports_ptime(self, ptime_ms: int) -> bool:
        """Whether this codec can send packets of ``ptime_ms``."""
        ...

    def encode(self, pcm: Pcm) -> bytes: ...

    def decode(self, payload: bytes) -> Pcm: ...


@dataclass(frozen=True)
class CodecInfo:
    """A codec as SDP names it: encoding name, static payload type (if any), RTP clock and channel count."""

    name: str
    static_payload_type: int | None
    clock_rate: int
    sample_rate: int
    channels: int = 1


PCMU = CodecInfo("PCMU", 0, 8000, 8000)
PCMA = CodecInfo("PCMA", 8, 8000, 8000)
G722 = CodecInfo("G722", 9, 8000, 16000)
OPUS = CodecInfo("opus", None, 48000, 48000, channels=2)
KNOWN_CODECS: dict[str, CodecInfo] = {c.name.lower(): c for c in (PCMU, PCMA, G722, OPUS)}


def _g711_tables(
    encoder: PcmuEncoder | PcmaEncoder, decoder: PcmuDecoder | PcmaDecoder
) -> tuple[NDArray[np.uint8], Pcm]:
    """Encode every int16 value and decode every byte once with FFmpeg, keeping the results as tables."""
    every_sample = np.arange(65536, dtype=np.uint16).view(np.int16)
    whole_frames = np.zeros(-(-65536 // 160) * 160, dtype=np.int16)  # the encoder works in 160-sample frames
    whole_frames[:65536] = every_sample
    frame = av.AudioFrame.from_ndarray(whole_frames.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, 8000)
    encoded = bytearray()
    payloads, _ = encoder.encode(frame)
    for payload in payloads:
        encoded += payload
    encode_table = np.frombuffer(bytes(encoded), dtype=np.uint8)[:65536].copy()
    decoded = decoder.decode(JitterFrame(data=bytes(range(256)), timestamp=0))
    decode_table = np.concatenate([cast(AudioFrame, f).to_ndarray().reshape(-1) for f in decoded])
    decode_table = decode_table.astype(np.int16)
    assert encode_table.shape == (65536,) and decode_table.shape == (256,)
    return encode_table, decode_table


_ULAW_ENCODE, _ULAW_DECODE = _g711_tables(PcmuEncoder(), PcmuDecoder())
_ALAW_ENCODE, _ALAW_DECODE = _g711_tables(PcmaEncoder(), PcmaDecoder())


class G711:
    """PCMU or PCMA by table lookup; stateless, so one instance could serve many calls."""

    sample_rate = 8000
    clock_rate = 8000

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "PCMU":
            self._encode_table, self._decode_table = _ULAW_ENCODE, _ULAW_DECODE
        elif name == "PCMA":
            self._encode_table, self._decode_table = _ALAW_ENCODE, _ALAW_DECODE
        else:
            raise ValueError(f"not a G.711 codec: {name}")

    def supports_ptime(self, ptime_ms: int) -> bool:
        return 0 < ptime_ms <= 120

    def encode(self, pcm: Pcm) -> bytes:
        return self._encode_table[pcm.view(np.uint16)].tobytes()

    def decode(self, payload: bytes) -> Pcm:
        return self._decode_table[np.frombuffer(payload, dtype=np.uint8)]


class _FFmpegCodec:
    """A stateful FFmpeg encoder/decoder pair through PyAV, mono s16 at ``sample_rate``.

    FFmpeg's encoders here take exactly ``frame_size`` samples per call (320 for G.722, 960 for Opus: 20 ms).
    Longer packets are made of several such frames where the bitstream allows simple concatenation
    (``concatenates``: G.722 is sample-synchronous ADPCM; an Opus packet is not a concatenation of frames).
    """

    concatenates = False

    def __init__(self, name: str, ffmpeg_name: str, sample_rate: int, clock_rate: int) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.clock_rate = clock_rate
        self._time_base = fractions.Fraction(1, sample_rate)
        self._encoder = cast(AudioCodecContext, av.CodecContext.create(ffmpeg_name, "w"))
        self._encoder.format = "s16"
        self._encoder.layout = "mono"
        self._encoder.sample_rate = sample_rate
        self._encoder.time_base = self._time_base
        self._configure(self._encoder)
        self._encoder.open()
        self.encoder_frame_samples = self._encoder.frame_size
        # PyAV's public encode() runs every frame through an AudioResampler even when nothing needs
        # converting, which costs ~10 µs per frame, as much as G.722 encoding itself. Our frames are already
        # in the codec's format and size, so they go straight to FFmpeg when this PyAV has that path.
        self._send_frame = getattr(self._encoder, "_send_frame_and_recv", self._encoder.encode)
        self._frame = AudioFrame(format="s16", layout="mono", samples=self.encoder_frame_samples)
        self._frame.sample_rate = sample_rate
        self._frame.time_base = self._time_base
        self._pts = 0
        self._decoder = cast(AudioCodecContext, av.CodecContext.create(ffmpeg_name, "r"))
        self._decoder.format = "s16"
        self._decoder.layout = "mono"
        self._decoder.sample_rate = sample_rate

    def _configure(self, encoder: AudioCodecContext) -> None:
        """Codec-specific encoder options, set before the encoder opens."""

    def supports_ptime(self, ptime_ms: int) -> bool:
        samples = self.sample_rate * ptime_ms // 1000
        if samples == self.encoder_frame_samples:
            return True
        return self.concatenates and samples > 0 and samples % self.encoder_frame_samples == 0

    def encode(self, pcm: Pcm) -> bytes:
        n = self.encoder_frame_samples
        if len(pcm) % n:
            raise ValueError(f"{self.name} encodes {n}-sample frames, not {len(pcm)}")
        payload = b""
        for start in range(0, len(pcm), n):
            # one frame object, refilled each time: FFmpeg has consumed it before the call returns
            self._frame.planes[0].update(pcm[start : start + n].astype(np.int16, copy=False).tobytes())
            self._frame.pts = self._pts
            self._pts += n
            for packet in self._send_frame(self._frame):
                payload += bytes(packet)
        return payload

    def decode(self, payload: bytes) -> Pcm:
        """The decoded samples; empty when the payload is not valid for this codec (the caller conceals)."""
        try:
            frames = self._converted(self._decoder.decode(av.Packet(payload)))
        except av.FFmpegError:
            return np.zeros(0, dtype=np.int16)
        if not frames:
            return np.zeros(0, dtype=np.int16)
        pieces = [np.frombuffer(memoryview(f.planes[0]), dtype=np.int16, count=f.samples).copy() for f in frames]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _converted(self, frames: list[AudioFrame]) -> list[AudioFrame]:
        """The decoder's frames in the codec's sample format and rate (already so, unless a subclass says)."""
        return frames


class G722Codec(_FFmpegCodec):
    """G.722: 16 kHz audio, 8 kHz RTP clock (RFC 3551 §4.5.2), 160 bytes per 20 ms."""

    concatenates = True

    def __init__(self) -> None:
        super().__init__("G722", "g722", 16000, 8000)


class OpusCodec(_FFmpegCodec):
    """Opus, mono on our side (RFC 7587 lets a receiver decode stereo or mono as it likes); we send 20 ms packets.

    The RTP clock is 48 kHz whatever ``sample_rate``. libopus encodes 8, 12, 16, 24 or 48 kHz PCM itself, so
    audio at a phone codec's rate goes in unresampled; FFmpeg's libopus decoder always gives 48 kHz, which is
    converted to ``sample_rate`` by libswresample (~12 µs per 20 ms, no added delay to speak of).
    ``complexity`` (0-10; libopus's default is 10) trades encoder CPU for quality.
    """

    def __init__(self, sample_rate: int = 48000, complexity: int | None = None) -> None:
        self._complexity = complexity
        super().__init__("opus", "libopus", sample_rate, 48000)
        self._to_rate = (
            av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            if sample_rate != OPUS.sample_rate
            else None
        )

    def _configure(self, encoder: AudioCodecContext) -> None:
        encoder.bit_rate = 32000
        options = {"application": "voip"}
        if self._complexity is not None:
            options["compression_level"] = str(self._complexity)
        encoder.options = options

    def _converted(self, frames: list[AudioFrame]) -> list[AudioFrame]:
        if self._to_rate is None:
            return frames
        return [out for frame in frames for out in self._to_rate.resample(frame)]


def create_codec(name: str) -> Codec:
    """A fresh codec instance for one call, by SDP encoding name (case-insensitive)."""
    key = name.lower()
    if key in ("pcmu", "pcma"):
        return G711(key.upper())
    if key == "g722":
        return G722Codec()
    if key == "opus":
        return OpusCodec()
    raise ValueError(f"unsupported codec: {name}")
