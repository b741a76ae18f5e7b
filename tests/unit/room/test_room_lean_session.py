"""What a server's `leave` means for the lean transport's session: the end of the call, or a new session."""

from __future__ import annotations

from livekit.protocol import models, rtc

from sipbridge.room.endings import EndReason
from sipbridge.room.lean.session import leave_loss


def test_a_leave_that_disconnects_ends_the_call_for_its_reason() -> None:
    removed = rtc.LeaveRequest(action=rtc.LeaveRequest.DISCONNECT, reason=models.DisconnectReason.PARTICIPANT_REMOVED)
    assert leave_loss(removed).end is EndReason.REMOVED
    unknown = rtc.LeaveRequest(action=rtc.LeaveRequest.DISCONNECT, reason=models.DisconnectReason.JOIN_FAILURE)
    assert leave_loss(unknown).end is EndReason.CONNECTION_LOST


def test_a_leave_that_asks_to_reconnect_or_resume_takes_a_new_session() -> None:
    # RESUME asks for an ICE restart, which aiortc cannot do: a new session, as for RECONNECT
    for action in (rtc.LeaveRequest.RECONNECT, rtc.LeaveRequest.RESUME):
        loss = leave_loss(rtc.LeaveRequest(action=action, reason=models.DisconnectReason.STATE_MISMATCH))
        assert loss.end is None and loss.rejoin
