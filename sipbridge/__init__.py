"""sipbridge: a SIP telephony bridge for LiveKit."""

__version__ = "0.1.0"
