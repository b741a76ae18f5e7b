"""One remote audio track on its way to the phone: its RTP packets in, 20 ms frames at the mixer's rate out.

Packets go into our jitter buffer as they arrive; each tick of the shared cadence plays one frame out of it
(Opus decoded by libopus straight to the mixer's rate, losses concealed, silence while the track is silent) into
the track's sink input, as the SDK's audio stream delivers a subscribed track's frames whether or not anyone
speaks.
"""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from sipbridge.media.jitter import JitterBuffer
from sipbridge.media.libopus import OpusDecoder
from sipbridge.media.playout import Playout
from sipbridge.room.lean.caller import FRAME_TICKS
from sipbridge.room.lean.negotiated import ReceiveRoute
from sipbridge.room.participant import FRAME_MS
from sipbridge.room.sink import AudioInput, TrackKey

OPUS_CLOCK = 48000


class RemoteAudio:
    def __init__(self, key: TrackKey, route: ReceiveRoute, sample_rate: int, audio_input: AudioInput) -> None:
        self.key = key
        self.route = route
        self._input = audio_input
        decoder = OpusDecoder(sample_rate)
        self._playout = Playout(JitterBuffer(FRAME_TICKS), decoder.decode, sample_rate * FRAME_MS // 1000)

    def receive(self, packet: RtpPacket, arrival: float) -> None:
        """One RTP packet of this track; `arrival` in seconds on a monotonic clock."""
        if packet.payload_type != self.route.payload_type:
            return
        self._playout.jitter.push(
            packet.ssrc,
            packet.sequence_number,
            packet.timestamp,
            packet.payload,
            arrival,
            OPUS_CLOCK,
            packet.marker == 1,
        )

    def play_frame(self) -> None:
        """Hands the next 20 ms to the sink input (one call per tick)."""
        self._input.push(self._playout.next_frame())

    def skip_frames(self, count: int) -> None:
        """Frame slots the cadence gave up (the loop ran late): they pass undecoded, as the phone side's mix is
        not pulled for them either, and catching up costs no decoding when the process is already behind."""
        for _ in range(count):
            self._playout.skip_frame()
