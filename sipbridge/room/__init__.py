"""The room side of a call: one LiveKit participant of kind SIP per phone call (see docs/room.md).

token       the join token: kind SIP, identity, attributes, room configuration (agent dispatch)
participant RoomParticipant: join, caller audio out, remote audio into an AudioSink, DTMF, attributes, endings
sink        the AudioSink seam towards the media mixer, and MixerSink over a call's Mixer
ffi_router  O(1) delivery of our audio FFI events, ahead of the SDK's O(N^2) fan-out
processing  the media-processor hook on the caller's audio and its self-hosted filling (WebRTC noise suppression)
dtmf        digits and their RFC 4733 codes
endings     why the participant left, as EndReason
"""

from sipbridge.room.dtmf import dtmf_code, dtmf_digit
from sipbridge.room.endings import EndReason
from sipbridge.room.participant import CALL_STATUS_ATTRIBUTE, FRAME_MS, CallStatus, RoomConnectError, RoomParticipant
from sipbridge.room.processing import MediaProcessor, NoiseSuppressor, processor_for_call
from sipbridge.room.sink import AudioInput, AudioSink, MixerSink, TrackKey
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token

__all__ = [
    "CALL_STATUS_ATTRIBUTE",
    "FRAME_MS",
    "AudioInput",
    "AudioSink",
    "CallStatus",
    "EndReason",
    "LiveKitCredentials",
    "MediaProcessor",
    "MixerSink",
    "NoiseSuppressor",
    "ParticipantSpec",
    "RoomConnectError",
    "RoomParticipant",
    "TrackKey",
    "dtmf_code",
    "dtmf_digit",
    "processor_for_call",
    "sip_participant_token",
]
