"""The SDK's disconnect reasons, as the endings a call flow acts on."""

from __future__ import annotations

from livekit import rtc

from sipbridge.room.endings import EndReason, end_reason


def test_each_named_reason_maps_to_its_ending() -> None:
    assert end_reason(rtc.DisconnectReason.CLIENT_INITIATED) is EndReason.LEFT
    assert end_reason(rtc.DisconnectReason.PARTICIPANT_REMOVED) is EndReason.REMOVED
    assert end_reason(rtc.DisconnectReason.ROOM_DELETED) is EndReason.ROOM_DELETED
    assert end_reason(rtc.DisconnectReason.ROOM_CLOSED) is EndReason.ROOM_DELETED
    assert end_reason(rtc.DisconnectReason.DUPLICATE_IDENTITY) is EndReason.REPLACED
    assert end_reason(rtc.DisconnectReason.SERVER_SHUTDOWN) is EndReason.SERVER_SHUTDOWN


def test_anything_else_is_a_lost_connection() -> None:
    for reason in (
        rtc.DisconnectReason.UNKNOWN_REASON,
        rtc.DisconnectReason.SIGNAL_CLOSE,
        rtc.DisconnectReason.CONNECTION_TIMEOUT,
        rtc.DisconnectReason.MEDIA_FAILURE,
        rtc.DisconnectReason.STATE_MISMATCH,
    ):
        assert end_reason(reason) is EndReason.CONNECTION_LOST
