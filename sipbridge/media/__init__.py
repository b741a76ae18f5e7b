"""The media engine: RTP sessions, codecs, DTMF, jitter buffer, SRTP, the resampling mixer, tones and prompts.

See docs/media.md for the public API a call flow uses.
"""
