"""RFC 4733 telephone-events: payload layout both ways, one report per press, and the sender's packet plan."""

from __future__ import annotations

import pytest

from sipbridge.media.dtmf import (
    TelephoneEvent,
    TelephoneEventReceiver,
    telephone_event_packets,
)


def test_payload_layout_matches_rfc_4733_figure_1() -> None:
    # event 5, E=1, R=0, volume 10, duration 800: 0x05, 0b1000_1010, 0x0320
    assert TelephoneEvent(5, True, 10, 800).pack() == bytes([0x05, 0x8A, 0x03, 0x20])
    parsed = TelephoneEvent.parse(bytes([0x0B, 0x0A, 0x01, 0x40]))
    assert parsed == TelephoneEvent(event=11, end=False, volume=10, duration=320)
    assert parsed.digit == "#"
    assert TelephoneEvent.parse(bytes([0x10, 0, 0, 0])).digit is None  # not a keypad event


def test_short_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01\x02")


def _press(receiver: TelephoneEventReceiver, timestamp: int, event: int, seconds: float) -> list[str]:
    """Packets every 50 ms of one press, then three end packets; no marker bit is involved at all."""
    reported = []
    step = 400
    total = int(8000 * seconds)
    for duration in range(step, total, step):
        digit = receiver.receive(timestamp, TelephoneEvent(event, False, 10, duration).pack())
        reported += [digit] if digit else []
    for _ in range(3):
        digit = receiver.receive(timestamp, TelephoneEvent(event, True, 10, total).pack())
        reported += [digit] if digit else []
    return reported


def test_digit_held_for_a_second_is_reported_once() -> None:
    receiver = TelephoneEventReceiver()
    assert _press(receiver, 1000, 1, 1.0) == ["1"]


def test_repeated_digit_with_new_timestamp_is_a_new_press() -> None:
    receiver = TelephoneEventReceiver()
    assert _press(receiver, 1000, 7, 0.1) + _press(receiver, 5000, 7, 0.1) == ["7", "7"]


def test_late_packet_of_an_older_event_is_ignored() -> None:
    receiver = TelephoneEventReceiver()
    _press(receiver, 9000, 2, 0.1)
    assert receiver.receive(1000, TelephoneEvent(3, True, 10, 800).pack()) is None


def test_press_longer_than_one_segment_continues_without_a_new_report() -> None:
    receiver = TelephoneEventReceiver()
    assert receiver.receive(0xFFFF0000, TelephoneEvent(0, False, 10, 0xFFFF).pack()) == "0"
    # RFC 4733 §2.5.1.3: next segment starts at the old timestamp plus its duration (wrapping here)
    next_segment = (0xFFFF0000 + 0xFFFF) & 0xFFFFFFFF
    assert receiver.receive(next_segment, TelephoneEvent(0, False, 10, 160).pack()) is None
    assert receiver.receive(0x20000, TelephoneEvent(0, True, 10, 320).pack()) == "0"


def test_sender_plan_has_marker_updates_and_three_end_packets() -> None:
    packets = telephone_event_packets("#", duration_ms=100, clock_rate=8000, interval_ms=20)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {11}
    assert [p.slot for p in packets] == list(range(7))
    receiver = TelephoneEventReceiver()
    assert [d for p in packets if (d := receiver.receive(42, p.payload))] == ["#"]


def test_sender_refuses_a_press_beyond_one_segment() -> None:
    with pytest.raises(ValueError):
        telephone_event_packets("1", duration_ms=9000)
