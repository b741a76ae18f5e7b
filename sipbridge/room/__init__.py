"""The room side of a call: one LiveKit participant of kind SIP per phone call (see docs/room.md).

participant     RoomParticipant: the contract every transport keeps (join, caller audio out, remote audio into an
                AudioSink, DTMF, attributes, RPC, endings) and what they share
transport       the config's `room_transport` and create_participant(): "lean" (the default) or "sdk"
lean            the transport of our own: aiortc for ICE, DTLS-SRTP and data channels, media on our cadence
sdk_participant the transport on the livekit rtc SDK
token           the join token: kind SIP, identity, attributes, room configuration (agent dispatch)
sink            the AudioSink seam towards the media mixer (a call's CallAudio is the sink)
ffi_router      O(1) delivery of our audio FFI events, ahead of the SDK's O(N^2) fan-out (SDK transport)
processing      the media-processor hook on the caller's audio and its self-hosted filling (WebRTC noise suppression)
rpc             room RPC: invocations, errors, handlers
dtmf            digits and their RFC 4733 codes
endings         why the participant left, as EndReason
"""

from sipbridge.room.dtmf import dtmf_code, dtmf_digit
from sipbridge.room.endings import EndReason
from sipbridge.room.participant import CALL_STATUS_ATTRIBUTE, FRAME_MS, CallStatus, RoomConnectError, RoomParticipant
from sipbridge.room.processing import MediaProcessor, NoiseSuppressor, processor_for_call
from sipbridge.room.rpc import RpcError, RpcHandler, RpcInvocation
from sipbridge.room.sink import AudioInput, AudioSink, TrackKey
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec, sip_participant_token
from sipbridge.room.transport import DEFAULT_ROOM_TRANSPORT, ROOM_TRANSPORTS, RoomTransport, create_participant

__all__ = [
    "CALL_STATUS_ATTRIBUTE",
    "DEFAULT_ROOM_TRANSPORT",
    "FRAME_MS",
    "ROOM_TRANSPORTS",
    "AudioInput",
    "AudioSink",
    "CallStatus",
    "EndReason",
    "LiveKitCredentials",
    "MediaProcessor",
    "NoiseSuppressor",
    "ParticipantSpec",
    "RoomConnectError",
    "RoomParticipant",
    "RoomTransport",
    "RpcError",
    "RpcHandler",
    "RpcInvocation",
    "TrackKey",
    "create_participant",
    "dtmf_code",
    "dtmf_digit",
    "processor_for_call",
    "sip_participant_token",
]
