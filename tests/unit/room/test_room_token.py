"""The join token, read back with livekit-api's own verifier: what livekit-server will see."""

from __future__ import annotations

from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

CREDENTIALS = LiveKitCredentials("ws://127.0.0.1:7880", "APIkey", "secret-" + "x" * 32)


def _verify(token: str) -> api.access_token.Claims:
    return api.TokenVerifier(CREDENTIALS.api_key, CREDENTIALS.api_secret).verify(token)


def test_token_carries_identity_kind_and_the_grants_a_call_needs() -> None:
    spec = ParticipantSpec(
        room="call-1",
        identity="sip_+15105550100",
        name="Phone +15105550100",
        metadata='{"note": "x"}',
        attributes={"sip.callStatus": "ringing", "sip.phoneNumber": "+15105550100"},
    )
    claims = _verify(sip_participant_token(CREDENTIALS, spec))
    assert (claims.identity, claims.name, claims.kind, claims.metadata) == (
        "sip_+15105550100",
        "Phone +15105550100",
        "sip",
        '{"note": "x"}',
    )
    assert claims.attributes == {"sip.callStatus": "ringing", "sip.phoneNumber": "+15105550100"}
    video = claims.video
    assert video is not None
    assert video.room == "call-1" and video.room_join
    assert video.can_publish and video.can_subscribe and video.can_publish_data and video.can_update_own_metadata
    assert not video.room_admin and not video.room_create
    assert claims.room_config is None


def test_token_carries_the_rules_room_configuration() -> None:
    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name="inbound-agent", metadata="job")], empty_timeout=30)
    claims = _verify(
        sip_participant_token(CREDENTIALS, ParticipantSpec(room="call-2", identity="sip_1", room_config=config))
    )
    assert claims.room_config == config
