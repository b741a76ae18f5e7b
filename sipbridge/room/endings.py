"""Why a call's participant left its room, in the terms a call flow acts on (send BYE, or not)."""

from __future__ import annotations

import enum

from livekit.protocol.models import DisconnectReason


class EndReason(enum.Enum):
    LEFT = "left"
    """We called `leave()`: the call flow ended the call itself."""
    REMOVED = "removed"
    """The participant was removed (`lk room participants remove`, RemoveParticipant, an agent's hangup)."""
    ROOM_DELETED = "room_deleted"
    """The room was deleted (DeleteRoom) or closed."""
    REPLACED = "replaced"
    """Another participant joined with the same identity."""
    SERVER_SHUTDOWN = "server_shutdown"
    CONNECTION_LOST = "connection_lost"
    """Signalling or media to the LiveKit server failed (and, with the SDK transport, reconnecting failed too)."""


_BY_DISCONNECT_REASON: dict[int, EndReason] = {
    DisconnectReason.CLIENT_INITIATED: EndReason.LEFT,
    DisconnectReason.PARTICIPANT_REMOVED: EndReason.REMOVED,
    DisconnectReason.ROOM_DELETED: EndReason.ROOM_DELETED,
    DisconnectReason.ROOM_CLOSED: EndReason.ROOM_DELETED,
    DisconnectReason.DUPLICATE_IDENTITY: EndReason.REPLACED,
    DisconnectReason.SERVER_SHUTDOWN: EndReason.SERVER_SHUTDOWN,
}


def end_reason(disconnect_reason: int) -> EndReason:
    """Our reason for LiveKit's DisconnectReason (the signalling's; the rtc SDK's enum has the same values);
    any reason not named above means the connection was lost."""
    return _BY_DISCONNECT_REASON.get(disconnect_reason, EndReason.CONNECTION_LOST)
