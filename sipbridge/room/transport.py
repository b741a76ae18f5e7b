"""Which room transport a call's participant uses (config `room_transport`), and making one."""

from __future__ import annotations

from typing import Literal, Unpack, get_args

from sipbridge.room.lean import LeanParticipant
from sipbridge.room.participant import ParticipantOptions, RoomParticipant
from sipbridge.room.sdk_participant import SdkParticipant
from sipbridge.room.sink import AudioSink
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec

RoomTransport = Literal["lean", "sdk"]
ROOM_TRANSPORTS: tuple[RoomTransport, ...] = get_args(RoomTransport)
DEFAULT_ROOM_TRANSPORT: RoomTransport = "lean"


def create_participant(
    transport: RoomTransport,
    credentials: LiveKitCredentials,
    spec: ParticipantSpec,
    sink: AudioSink,
    **options: Unpack[ParticipantOptions],
) -> RoomParticipant:
    """A participant on `transport`: "lean" (aiortc plus our own media; the default) or "sdk" (the livekit rtc
    SDK)."""
    if transport == "lean":
        return LeanParticipant(credentials, spec, sink, **options)
    return SdkParticipant(credentials, spec, sink, **options)
