"""SIP statuses of failed calls → the Twirp code and metadata LiveKit's clients read."""

from __future__ import annotations

import pytest

from sipbridge.calls.errors import CallError, code_for_sip_status


@pytest.mark.parametrize(
    ("status", "code"),
    [(486, "resource_exhausted"), (404, "not_found"), (603, "permission_denied"), (408, "deadline_exceeded"),
     (487, "aborted"), (503, "failed_precondition"), (599, "failed_precondition"), (499, "invalid_argument")],
)  # fmt: skip
def test_codes_follow_livekit(status: int, code: str) -> None:
    assert code_for_sip_status(status) == code


def test_metadata_carries_the_status_and_its_phrase() -> None:
    busy = CallError.from_sip_status(486, "Busy Here", "call failed")
    assert busy.code == "resource_exhausted"
    assert busy.meta == {"sip_status_code": "486", "sip_status": "Busy Here"}
    assert CallError.from_sip_status(486, "", "x").meta["sip_status"] == "SIP_STATUS_BUSY_HERE"
    assert CallError("unavailable", "no port").meta == {}
