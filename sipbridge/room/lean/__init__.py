"""The lean room transport (config `room_transport: lean`): a LiveKit participant of our own, without the rtc SDK.

aiortc does only the connection (ICE, DTLS-SRTP, the SCTP data channels); the audio is ours, on sipbridge's shared
20 ms cadence: the caller's frames Opus-encoded at the codec's rate and sent as our own RTP packets, each remote
track's RTP through our jitter buffer, Opus decoding and concealment into the call's mixer. See docs/room.md.

signal      the websocket to livekit-server's /rtc/v1 with livekit.protocol messages, and its keep-alive
peer        the one aiortc peer connection: offers, answers, candidates, data channels
negotiated  what an answer settled for our RTP: our track's route out, the remote tracks' routes in (pure)
rtp_path    RTP in and out over the peer connection's DTLS-SRTP transport, bypassing aiortc's media pipeline
caller      the caller's audio: paced queue, Opus encoding, our RTP packets (with audio level)
remote      one remote track's audio: jitter buffer, Opus decoding, concealment, 20 ms frames
roster      the other participants and their audio tracks, as the signalling reports them (pure)
rpc_server  answering room RPC requests the way LiveKit's SDKs do
participant LeanParticipant: the RoomParticipant these make up
"""

from sipbridge.room.lean.participant import LeanParticipant

__all__ = ["LeanParticipant"]
