"""How a call flow stops: `CallEnd` carries why (for the log) and the Go service's words for it (for the metrics)."""

from __future__ import annotations

from sipbridge.room import EndReason
from sipbridge.stats import Termination, client_error, server_error, success


class CallEnd(Exception):
    """Raised inside a flow to stop it; ``reason`` goes to the log, ``termination`` to the metrics."""

    def __init__(self, reason: str, termination: Termination) -> None:
        super().__init__(reason)
        self.reason = reason
        self.termination = termination


_ROOM_ENDINGS = {
    EndReason.LEFT: success("removed"),
    EndReason.REMOVED: success("removed"),
    EndReason.ROOM_DELETED: success("removed"),
    EndReason.REPLACED: client_error("duplicate-identity"),
    EndReason.SERVER_SHUTDOWN: server_error("server-shutdown"),
    EndReason.CONNECTION_LOST: server_error("room-disconnected"),
}


def room_ending(reason: EndReason | None) -> Termination:
    """The metrics' word for why the participant left its room (as the Go service sorts LiveKit's reasons)."""
    return _ROOM_ENDINGS.get(reason, server_error("room-disconnected")) if reason else server_error("room-disconnected")
