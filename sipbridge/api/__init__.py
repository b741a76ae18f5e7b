"""The livekit.SIP Twirp API."""
