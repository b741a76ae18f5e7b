"""The lean transport's view of the other participants and their audio tracks."""

from __future__ import annotations

from livekit.protocol.models import ParticipantInfo, TrackInfo, TrackType

from sipbridge.room.lean.roster import Roster


def _info(
    sid: str, identity: str, version: int, *tracks: TrackInfo, state: int = ParticipantInfo.ACTIVE
) -> ParticipantInfo:
    return ParticipantInfo(sid=sid, identity=identity, version=version, state=state, tracks=list(tracks))


AUDIO = TrackInfo(sid="TR_a", type=TrackType.AUDIO)
VIDEO = TrackInfo(sid="TR_v", type=TrackType.VIDEO)


def test_audio_tracks_of_the_others_with_their_identities() -> None:
    roster = Roster("PA_us")
    roster.update([_info("PA_agent", "agent", 1, AUDIO, VIDEO), _info("PA_us", "us", 1, TrackInfo(sid="TR_ours"))])
    assert roster.audio_tracks() == {"TR_a": "agent"}


def test_an_older_copy_arriving_late_is_ignored() -> None:
    roster = Roster("PA_us")
    roster.update([_info("PA_agent", "agent", 2)])
    roster.update([_info("PA_agent", "agent", 1, AUDIO)])
    assert roster.audio_tracks() == {}
    roster.update([_info("PA_agent", "agent", 3, AUDIO)])
    assert roster.audio_tracks() == {"TR_a": "agent"}


def test_a_participant_that_left_takes_its_tracks_along() -> None:
    roster = Roster("PA_us")
    roster.update([_info("PA_agent", "agent", 1, AUDIO)])
    roster.update([_info("PA_agent", "agent", 2, AUDIO, state=ParticipantInfo.DISCONNECTED)])
    assert roster.audio_tracks() == {}
