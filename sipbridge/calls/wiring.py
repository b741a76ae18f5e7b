"""The real layers behind the call flows' seams: RTP sessions on the node's port range, and room participants on
the configured room transport with the Krisp-flag noise suppressor."""

from __future__ import annotations

from collections.abc import Callable

from sipbridge.calls.seams import CallParticipant, ParticipantFactory, PhoneRtp, RtpOpener
from sipbridge.media.ports import PortAllocator
from sipbridge.media.session import RtpSession
from sipbridge.room import (
    AudioSink,
    LiveKitCredentials,
    ParticipantSpec,
    RoomTransport,
    create_participant,
    processor_for_call,
)


def rtp_sessions(ports: PortAllocator, bind_host: str) -> RtpOpener:
    """Each call's RTP session on a free port pair of ``ports``, bound on ``bind_host``."""

    async def open_rtp() -> PhoneRtp:
        return await RtpSession.open(ports, bind_host)

    return open_rtp


def room_participants(transport: RoomTransport) -> ParticipantFactory:
    """Each call's participant on ``transport`` ("sdk" or "lean"), publishing and subscribing at the call's rate."""

    def create(
        spec: ParticipantSpec,
        sink: AudioSink,
        *,
        credentials: LiveKitCredentials,
        rate: int,
        krisp_enabled: bool,
        on_dtmf: Callable[[str], None],
        token: str,
        call_id: str,
    ) -> CallParticipant:
        return create_participant(
            transport,
            credentials,
            spec,
            sink,
            publish_rate=rate,
            subscribe_rate=rate,
            processor=processor_for_call(krisp_enabled, rate),
            on_dtmf=on_dtmf,
            token=token,
            call_id=call_id,
        )

    return create
