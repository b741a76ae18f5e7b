"""The other participants of the room and the audio tracks each publishes, as the signalling reports them (pure).

livekit-server sends every participant's whole `ParticipantInfo` when anything about it changes (join response,
then `update` messages); each carries a version, so an older copy arriving late is ignored. A participant whose
state is DISCONNECTED has left, and its tracks with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol.models import ParticipantInfo, TrackType


class Roster:
    def __init__(self, own_sid: str) -> None:
        self._own_sid = own_sid
        self._participants: dict[str, ParticipantInfo] = {}

    def update(self, infos: Iterable[ParticipantInfo]) -> None:
        for info in infos:
            if info.sid == self._own_sid:
                continue
            known = self._participants.get(info.sid)
            if known is not None and known.version > info.version:
                continue
            if info.state == ParticipantInfo.State.DISCONNECTED:
                self._participants.pop(info.sid, None)
            else:
                self._participants[info.sid] = info

    def audio_tracks(self) -> dict[str, str]:
        """Every remote audio track published now: its sid and its publisher's identity."""
        return {
            track.sid: info.identity
            for info in self._participants.values()
            for track in info.tracks
            if track.type == TrackType.AUDIO
        }
