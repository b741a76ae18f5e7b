"""One remote track on the lean transport: RTP in, 20 ms frames at the mixer's rate out, one per tick."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.rtp import RtpPacket
from harness.audio import dominant_frequency, rms_dbfs, sine

from sipbridge.media.codecs import OpusCodec, Pcm
from sipbridge.room.lean.caller import FRAME_TICKS
from sipbridge.room.lean.negotiated import ReceiveRoute
from sipbridge.room.lean.remote import RemoteAudio
from sipbridge.room.sink import TrackKey

ROUTE = ReceiveRoute(mid="2", ssrc=77, track_sid="TR_x", payload_type=96)


class Recorder:
    def __init__(self) -> None:
        self.frames: list[Pcm] = []

    def push(self, pcm: Pcm) -> None:
        self.frames.append(pcm)


def _packets(freq: float, seconds: float) -> list[RtpPacket]:
    encoder = OpusCodec(48000)
    tone = sine(freq, seconds, 48000, dbfs=-20.0)
    return [
        RtpPacket(
            payload_type=96,
            sequence_number=n,
            timestamp=n * FRAME_TICKS,
            ssrc=77,
            payload=encoder.encode(tone[i : i + 960]),
        )
        for n, i in enumerate(range(0, len(tone) - 959, 960))
    ]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_each_tick_plays_one_frame_at_the_mixers_rate(rate: int) -> None:
    recorder = Recorder()
    remote = RemoteAudio(TrackKey("agent", "TR_x"), ROUTE, rate, recorder)
    for n, packet in enumerate(_packets(1000.0, 1.0)):
        remote.receive(packet, n * 0.02)
        remote.play_frame()
    assert {len(frame) for frame in recorder.frames} == {rate // 50}
    heard = np.concatenate(recorder.frames)[rate // 4 :]
    assert dominant_frequency(heard, rate) == pytest.approx(1000.0, abs=5.0)
    assert rms_dbfs(heard) == pytest.approx(-20.0, abs=2.0)


def test_a_lost_packet_is_concealed_and_silence_is_played_while_nothing_comes() -> None:
    recorder = Recorder()
    # at 48 kHz no resampler delay shifts the frames against the packets, so frame n is packet n
    remote = RemoteAudio(TrackKey("agent", "TR_x"), ROUTE, 48000, recorder)
    packets = _packets(1000.0, 0.5)
    remote.receive(packets[0], 0.0)
    for n in range(len(packets) - 1):
        if n + 1 != 20:  # each packet arrives a tick ahead of its turn; number 20 never does
            remote.receive(packets[n + 1], (n + 1) * 0.02)
        remote.play_frame()
    assert rms_dbfs(recorder.frames[20]) > -30.0  # concealed from the frame before, not a gap
    for _ in range(5):
        remote.play_frame()
    assert not recorder.frames[-1].any()


def test_packets_of_another_payload_type_are_not_played() -> None:
    recorder = Recorder()
    remote = RemoteAudio(TrackKey("agent", "TR_x"), ROUTE, 8000, recorder)
    for n, packet in enumerate(_packets(1000.0, 0.2)):
        packet.payload_type = 0
        remote.receive(packet, n * 0.02)
        remote.play_frame()
    assert not np.concatenate(recorder.frames).any()


def test_slots_given_up_pass_undecoded_and_playout_goes_on_in_time() -> None:
    recorder = Recorder()
    remote = RemoteAudio(TrackKey("agent", "TR_x"), ROUTE, 48000, recorder)
    packets = _packets(1000.0, 0.2)
    for n, packet in enumerate(packets):
        remote.receive(packet, n * 0.02)
    remote.play_frame()
    remote.skip_frames(3)  # the loop was late by three slots: their packets go unplayed
    for _ in range(len(packets)):
        remote.play_frame()
    assert sum(bool(frame.any()) for frame in recorder.frames) == len(packets) - 3
