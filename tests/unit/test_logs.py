"""Log lines: text with the call's identifiers in a prefix, or one JSON object per line with them as keys."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sipbridge import logs
from sipbridge.calls.services import CallLog


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def emit(stream: io.StringIO, formatter: logging.Formatter) -> list[str]:
    logger = logging.getLogger("sipbridge.test")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        call = CallLog(logger, {"callID": "SCL_abc", "sipCallID": "x@y"})
        call.info("answered")
        call.identify(room="room-1", participant="sip_+1555")
        call.info("joined %s", "room-1")
        try:
            raise ValueError("boom")
        except ValueError:
            call.exception("failed")
        logger.info("no call here")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_text_lines_carry_the_ids_in_a_prefix(stream: io.StringIO) -> None:
    lines = emit(stream, logs.TextFormatter())
    assert lines[0].endswith("sipbridge.test: [callID=SCL_abc sipCallID=x@y] answered")
    assert "[callID=SCL_abc sipCallID=x@y room=room-1 participant=sip_+1555] joined room-1" in lines[1]
    assert lines[-1].endswith("sipbridge.test: no call here")


def test_json_lines_parse_and_carry_the_ids(stream: io.StringIO) -> None:
    entries = [json.loads(line) for line in emit(stream, logs.JsonFormatter())]
    assert entries[0] | {"time": ""} == {
        "time": "", "level": "info", "logger": "sipbridge.test", "msg": "answered",
        "callID": "SCL_abc", "sipCallID": "x@y",
    }  # fmt: skip
    assert entries[1]["room"] == "room-1" and entries[1]["participant"] == "sip_+1555"
    assert entries[2]["level"] == "error" and "ValueError: boom" in entries[2]["error"]
    assert "callID" not in entries[3]
    assert entries[0]["time"].endswith("+00:00")
