"""A call's quality every 5 s: the caller's loss and jitter as received, our audio as the caller's RTCP reports
it with the round trip, into the call's trace; and on the participant as ``sip.quality.*``, sent only on change."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from sipbridge.calls import quality_watch
from sipbridge.calls.quality_watch import QualityWatch, quality_attributes
from sipbridge.config import InspectorSettings
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.trace import CallSummary, CallTrace
from sipbridge.media.stream import MediaStream, StreamConfig


@dataclass
class Session:
    stream: MediaStream | None


@dataclass
class Participant:
    updates: list[dict[str, str]] = field(default_factory=list)
    end_reason: None = None

    async def update_attributes(self, attributes: dict[str, str]) -> None:
        self.updates.append(dict(attributes))


@dataclass
class Call:
    rtp: Session
    trace: CallTrace | None
    participant: Participant | None
    summary: CallSummary


def a_call_on_a_lossy_line() -> tuple[MediaStream, MediaStream]:
    """The bridge's stream after 5 s of a caller losing one packet in ten each way, with RTCP both ways."""
    ours = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(1))
    theirs = MediaStream(StreamConfig("PCMU", 0), 0.0, random.Random(2))
    frame = np.zeros(160, dtype=np.int16)
    for i in range(250):
        (to_us,), (to_them,) = theirs.datagrams_for_frame(frame), ours.datagrams_for_frame(frame)  # no digits: one each
        if i % 10 != 3:
            ours.receive_rtp(to_us, i * 0.02)
            theirs.receive_rtp(to_them, i * 0.02 + 0.04)
        ours.pull_audio()
    theirs.receive_rtcp(ours.rtcp_report(4.90, 1_700_000_004.9), 4.94)  # our sender report, 40 ms on the way
    ours.receive_rtcp(theirs.rtcp_report(4.96, 1_700_000_004.96), 5.00)  # their receiver report 20 ms later
    return ours, theirs


def test_a_sample_goes_into_the_trace_with_both_directions_and_the_round_trip() -> None:
    ours, _ = a_call_on_a_lossy_line()
    book = TraceBook(InspectorSettings())
    trace = book.claim("call-1", CallSummary("SCL_q"))
    watch = QualityWatch(Call(Session(ours), trace, None, trace.summary), book, started=0.0)
    sample = watch.sample(5.0)
    assert sample is not None
    row = trace.quality.last()
    assert row is not None and row["at"] == 5.0
    assert row["rx_loss_pct"] == pytest.approx(10.0, abs=0.5) and row["rx_packets"] == 225
    assert row["tx_interval_loss_pct"] == pytest.approx(10.0, abs=0.5)  # what the caller's report says
    assert row["rtt_ms"] == pytest.approx(80.0, abs=2.0)  # 40 ms there, 20 ms held, 40 ms back: 80 ms
    assert row["rx_mos"] is not None and row["rx_mos"] < 4.0
    assert quality_attributes(sample) == {
        "sip.quality.mos": f"{sample.from_caller.mos:.2f}",
        "sip.quality.lossPct": f"{sample.from_caller.interval_loss_pct:.1f}",
        "sip.quality.jitterMs": f"{sample.from_caller.jitter_ms:.1f}",
    }
    assert book.size >= trace.quality.nbytes > 0


def test_no_media_no_sample() -> None:
    book = TraceBook(InspectorSettings())
    watch = QualityWatch(Call(Session(None), None, None, CallSummary()), book, started=0.0)
    assert watch.sample(5.0) is None


async def test_the_participant_hears_of_a_change_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _ = a_call_on_a_lossy_line()
    monkeypatch.setattr(quality_watch, "INTERVAL", 0)
    participant = Participant()
    book = TraceBook(InspectorSettings())
    trace = book.claim("call-2", CallSummary())
    watch = QualityWatch(Call(Session(ours), trace, participant, trace.summary), book, started=0.0)
    times, fourth = [5.0, 10.0, 15.0, 20.0], asyncio.Event()

    def clock() -> float:
        if len(times) == 1:
            fourth.set()  # three samples and their updates are done
        return times.pop(0)

    task = asyncio.create_task(watch.run(clock))
    await fourth.wait()
    task.cancel()
    first, second = participant.updates  # the third sample said what the second said: not sent again
    assert float(first["sip.quality.lossPct"]) == pytest.approx(10.0, abs=0.5)
    assert second["sip.quality.lossPct"] == "0.0"  # nothing arrived since the first, so nothing was lost
