"""The jitter buffer under loss, reordering, duplicates, jumps and SSRC changes, driven by a simulated clock."""

from __future__ import annotations

import random

from sipbridge.media.jitter import Gap, JitterBuffer, JitterPacket

FRAME = 160
RATE = 8000


def _push(buffer: JitterBuffer, sequence: int, arrival: float, ssrc: int = 1, timestamp: int | None = None) -> None:
    ts = sequence * FRAME if timestamp is None else timestamp
    buffer.push(ssrc, sequence & 0xFFFF, ts & 0xFFFFFFFF, sequence.to_bytes(4, "big"), arrival, RATE)


def test_in_order_under_ten_percent_loss_and_reordering() -> None:
    rng = random.Random(5)
    count = 3000
    sent = [s for s in range(60000, 60000 + count) if rng.random() >= 0.10]  # wraps past 65535
    # up to three frames of jitter, so packets overtake each other
    events = sorted(((s - 60000) * 0.02 + rng.uniform(0, 0.06), s) for s in sent)
    buffer = JitterBuffer(FRAME, max_depth=10)
    played: list[int] = []
    losses = 0
    index = 0
    for tick in range(count + 20):
        now = tick * 0.02
        while index < len(events) and events[index][0] <= now:
            _push(buffer, events[index][1], events[index][0])
            if rng.random() < 0.01:  # the network duplicates a packet now and then
                _push(buffer, events[index][1], events[index][0] + 0.001)
            index += 1
        out = buffer.pop()
        if isinstance(out, JitterPacket):
            played.append(int.from_bytes(out.payload, "big"))
        elif out is Gap.LOST:
            losses += 1
    assert played == sorted(played) and len(set(played)) == len(played)
    assert len(played) >= 0.99 * len(sent)
    assert losses >= count - len(sent) - 5  # every real loss was reported for concealment
    assert buffer.late_or_duplicate > 0
    assert 2 <= buffer.target_depth <= 10


def test_starts_at_target_depth_and_reports_loss_only_when_later_packets_wait() -> None:
    buffer = JitterBuffer(FRAME, min_depth=2)
    assert buffer.pop() is Gap.EMPTY
    _push(buffer, 10, 0.0)
    assert buffer.pop() is Gap.EMPTY  # one packet, depth two: wait
    _push(buffer, 12, 0.04)
    first = buffer.pop()
    assert isinstance(first, JitterPacket) and first.sequence == 10
    assert buffer.pop() is Gap.LOST  # 11 missing, 12 waiting
    second = buffer.pop()
    assert isinstance(second, JitterPacket) and second.sequence == 12
    assert buffer.pop() is Gap.EMPTY  # drained: why is known when the next packet comes
    _push(buffer, 13, 0.09)  # the packet right after 12, late: the buffer deepens
    assert buffer.underruns == 1 and buffer.target_depth == 3


def test_a_pause_in_silence_suppression_does_not_deepen_the_buffer() -> None:
    buffer = JitterBuffer(FRAME)
    for s in range(3):
        _push(buffer, s, s * 0.02)
        assert isinstance(buffer.pop(), JitterPacket)
    for _ in range(50):  # the peer sends nothing for a second (DTX)
        assert buffer.pop() is Gap.EMPTY
    buffer.push(1, 3, 53 * FRAME, b"talk", 1.06, RATE, marker=True)  # next talkspurt, timestamp moved on
    out = buffer.pop()
    assert isinstance(out, JitterPacket) and out.payload == b"talk"
    assert buffer.pauses == 1 and buffer.underruns == 0 and buffer.target_depth == 1
    for _ in range(3):
        buffer.pop()
    buffer.push(1, 4, 200 * FRAME, b"no marker", 4.0, RATE)  # carriers that never set it: the jump tells
    assert buffer.pauses == 2 and buffer.underruns == 0


def test_ssrc_change_restarts_the_stream() -> None:
    buffer = JitterBuffer(FRAME)
    _push(buffer, 100, 0.0)
    assert isinstance(buffer.pop(), JitterPacket)
    _push(buffer, 7, 0.02, ssrc=2)  # new source, unrelated numbering
    out = buffer.pop()
    assert isinstance(out, JitterPacket) and out.sequence == 7
    assert buffer.resets == 1


def test_sequence_jump_restarts_instead_of_waiting() -> None:
    buffer = JitterBuffer(FRAME)
    for s in range(5):
        _push(buffer, s, s * 0.02)
        assert isinstance(buffer.pop(), JitterPacket)
    _push(buffer, 30000, 0.1, timestamp=999999)
    out = buffer.pop()
    assert isinstance(out, JitterPacket) and out.sequence == 30000


def test_long_outage_resumes_at_the_waiting_packet() -> None:
    buffer = JitterBuffer(FRAME, max_depth=5)
    _push(buffer, 0, 0.0)
    assert isinstance(buffer.pop(), JitterPacket)
    _push(buffer, 200, 4.0)
    _push(buffer, 201, 4.02)
    assert buffer.pop() is Gap.LOST
    out = buffer.pop()
    assert isinstance(out, JitterPacket) and out.sequence == 200
    assert buffer.lost == 199


def test_depth_grows_with_jitter_and_shrinks_when_calm() -> None:
    buffer = JitterBuffer(FRAME, max_depth=10)
    rng = random.Random(1)
    for s in range(200):  # +-40 ms of jitter
        _push(buffer, s, s * 0.02 + rng.uniform(0, 0.08))
    grown = buffer.target_depth
    assert grown >= 4
    # after the jitter burst, steady arrivals with a backlog: the buffer sheds packets to cut latency
    for s in range(200, 800):
        _push(buffer, s, s * 0.02)
        buffer.pop()
    assert buffer.dropped_for_latency > 0
    assert len(buffer) <= buffer.target_depth + 2
