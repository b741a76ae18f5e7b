"""The join token of a call's participant: kind SIP, the identity and attributes dispatch chose, and the room
configuration (agent dispatch) the dispatch rule carries, so the room is created the way the rule says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from livekit import api
from livekit.protocol.room import RoomConfiguration

TOKEN_TTL = timedelta(hours=25)
"""Longer than the longest call LiveKit allows (24 h), so a reconnect late in a call still presents a valid token."""


@dataclass(frozen=True)
class LiveKitCredentials:
    """Where the rooms are and the key pair that signs join tokens (config `ws_url`, `api_key`, `api_secret`)."""

    ws_url: str
    api_key: str
    api_secret: str


@dataclass(frozen=True)
class ParticipantSpec:
    """Who the call is in the room: what `dispatch/` decided for it."""

    room: str
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    room_config: RoomConfiguration | None = None


def sip_participant_token(credentials: LiveKitCredentials, spec: ParticipantSpec) -> str:
    """A JWT joining `spec.room` as a SIP participant that may publish, subscribe, send data and DTMF, and update
    its own metadata and attributes (for `sip.callStatus`)."""
    grants = api.VideoGrants(
        room_join=True,
        room=spec.room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=True,
    )
    token = (
        api.AccessToken(credentials.api_key, credentials.api_secret)
        .with_identity(spec.identity)
        .with_name(spec.name)
        .with_metadata(spec.metadata)
        .with_kind("sip")
        .with_grants(grants)
        .with_ttl(TOKEN_TTL)
    )
    if spec.attributes:
        token = token.with_attributes(dict(spec.attributes))
    if spec.room_config is not None:
        token = token.with_room_config(spec.room_config)
    return token.to_jwt()
