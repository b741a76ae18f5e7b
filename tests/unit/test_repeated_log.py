"""RepeatedEventLog: a flood of bad input writes a handful of lines per window, whatever its size or sources."""

from __future__ import annotations

import logging

import pytest

from sipbridge.repeated_log import RepeatedEventLog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_first_event_of_a_source_is_logged_at_once_and_the_rest_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log = RepeatedEventLog(logging.getLogger("t"), "malformed SIP messages", window=10.0)
    log.note("198.51.100.7", "no end of headers", now=0.0)
    assert lines(caplog) == ["malformed SIP messages from 198.51.100.7: no end of headers"]
    for i in range(999):
        log.note("198.51.100.7", f"junk {i}", now=1.0 + i / 1000)
    assert len(caplog.records) == 1
    assert log.next_deadline() == 10.0
    log.flush(now=10.0)
    assert lines(caplog)[1] == "999 malformed SIP messages from 198.51.100.7 in the last 10 s (last: junk 998)"
    assert log.next_deadline() is None


def test_a_flood_from_many_sources_stays_within_a_few_lines_per_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log = RepeatedEventLog(logging.getLogger("t"), "bad things", window=10.0, immediate=3, summarised=5)
    now = 0.0
    for window in range(3):
        for i in range(150_000 // 3):
            now = window * 10.0 + i * 1e-4
            log.note(f"10.{i % 7000 // 250}.{i % 250}.1", "x", now=now)
        log.flush(now=window * 10.0 + 10.0)
    assert len(caplog.records) <= 3 * (3 + 5 + 1)
    assert any("more bad things from" in line for line in lines(caplog))
    assert sum(len(line) for line in lines(caplog)) < 100_000
