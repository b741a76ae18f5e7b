"""Call quality: the E-model's scores move the way listeners' do, and a stream's counters become per-direction
figures (loss overall and per interval, jitter, concealment, and the peer's view with the round trip)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sipbridge.media.quality import QualityMeter, e_model_mos
from sipbridge.media.stream import MediaStream, StreamConfig


def _one(stream: MediaStream, pcm: np.ndarray) -> bytes:
    """The one datagram of a slot that carries no digit sent both ways."""
    (datagram,) = stream.datagrams_for_frame(pcm)
    return datagram


def test_e_model_scores_fall_with_loss_and_delay() -> None:
    clean = e_model_mos("PCMU", 0.0, 20)
    assert clean == pytest.approx(4.4, abs=0.05)  # G.711 at its best is ~4.4
    assert e_model_mos("PCMU", 0.01, 20) < clean
    assert e_model_mos("PCMU", 0.05, 20) < e_model_mos("PCMU", 0.01, 20)
    assert e_model_mos("PCMU", 0.05, 20) == pytest.approx(3.9, abs=0.1)  # G.113: R = 76.9 at 5 % random loss
    assert e_model_mos("PCMU", 0.0, 400) < e_model_mos("PCMU", 0.0, 100) < clean
    assert e_model_mos("PCMU", 1.0, 1000) == 1.0


def test_a_meter_reports_loss_jitter_and_concealment_from_the_receiving_side() -> None:
    sender = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(1))
    receiver = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(2))
    meter = QualityMeter(0.0)
    rng = random.Random(7)
    frame = np.zeros(160, dtype=np.int16)
    for i in range(250):  # 5 s with 5 % of packets lost
        datagram = _one(sender, frame)
        if rng.random() >= 0.05:
            receiver.receive_rtp(datagram, i * 0.02 + rng.uniform(0, 0.004))
        receiver.pull_audio()
    sample = meter.sample(receiver, 5.0)
    caller = sample.from_caller
    assert caller.loss_pct == pytest.approx(5.0, abs=2.0) and caller.interval_loss_pct == caller.loss_pct
    assert caller.lost == 250 - caller.packets or caller.lost == 249 - caller.packets
    assert 0 < caller.jitter_ms < 5 and caller.concealed_ms > 0
    assert caller.mos < e_model_mos("PCMU", 0.0, 20)
    assert sample.to_caller is None  # the caller sent no receiver report
    later = meter.sample(receiver, 10.0)
    assert later.from_caller.interval_loss_pct == 0.0  # nothing arrived or was lost since
    assert len(meter.samples) == 2


def test_the_peers_receiver_report_gives_the_other_direction_and_the_round_trip() -> None:
    ours = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(1))
    theirs = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(2))
    frame = np.zeros(160, dtype=np.int16)
    for i in range(100):
        datagram = _one(ours, frame)
        if i % 10 != 5:  # they lose one in ten of ours
            theirs.receive_rtp(datagram, i * 0.02)
    sender_report = ours.rtcp_report(2.0, 1_700_000_000.0)
    theirs.receive_rtcp(sender_report, 2.05)  # 50 ms one way
    receiver_report = theirs.rtcp_report(2.25, 1_700_000_000.25)  # they answer 200 ms later
    ours.receive_rtcp(receiver_report, 2.30)
    sample = QualityMeter(0.0).sample(ours, 5.0)
    assert sample.to_caller is not None
    assert sample.to_caller.interval_loss_pct == pytest.approx(10.0, abs=1.0)
    assert sample.round_trip_ms == pytest.approx(100.0, abs=2.0)
