"""LiveKit's disconnect reasons, as the endings a call flow acts on."""

from __future__ import annotations

from livekit import rtc
from livekit.protocol.models import DisconnectReason

from sipbridge.room.endings import EndReason, end_reason


def test_each_named_reason_maps_to_its_ending() -> None:
    assert end_reason(DisconnectReason.CLIENT_INITIATED) is EndReason.LEFT
    assert end_reason(DisconnectReason.PARTICIPANT_REMOVED) is EndReason.REMOVED
    assert end_reason(DisconnectReason.ROOM_DELETED) is EndReason.ROOM_DELETED
    assert end_reason(DisconnectReason.ROOM_CLOSED) is EndReason.ROOM_DELETED
    assert end_reason(DisconnectReason.DUPLICATE_IDENTITY) is EndReason.REPLACED
    assert end_reason(DisconnectReason.SERVER_SHUTDOWN) is EndReason.SERVER_SHUTDOWN


def test_anything_else_is_a_lost_connection() -> None:
    for reason in (
        DisconnectReason.UNKNOWN_REASON,
        DisconnectReason.SIGNAL_CLOSE,
        DisconnectReason.CONNECTION_TIMEOUT,
        DisconnectReason.MEDIA_FAILURE,
        DisconnectReason.STATE_MISMATCH,
    ):
        assert end_reason(reason) is EndReason.CONNECTION_LOST


def test_the_sdk_reports_reasons_with_the_signallings_values() -> None:
    """The SDK transport hands the rtc SDK's DisconnectReason to the same mapping."""
    for name, value in DisconnectReason.items():
        assert getattr(rtc.DisconnectReason, name) == value
