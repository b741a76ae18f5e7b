"""The Go SIP service's config.yaml keys this bridge accepts without acting on them, each with the reason.

A config.yaml written for github.com/livekit/sip loads unchanged. Every key it defines is either acted on with the
Go meaning (sipbridge.config reads it), or listed here: what it does there, and why it does nothing here. Start-up
names these keys with their reasons, so nothing is ignored silently; docs/configuration.md carries the same table
(a unit test keeps the two in step).
"""

from __future__ import annotations

NO_EFFECT: dict[str, tuple[str, str]] = {
    "disable_rejected_invite_cache": (
        "turns off the cache that replays a final INVITE rejection to retries with the same Call-ID and tag",
        "no such cache: retransmissions are answered by their transaction, and a new INVITE is decided afresh",
    ),
    "enable_jitter_buffer": (
        "switches its jitter buffer on or off",
        "the adaptive jitter buffer is always on (it is also what conceals loss); it cannot be switched off",
    ),
    "enable_jitter_buffer_prob": (
        "switches its jitter buffer on for this share of calls",
        "the adaptive jitter buffer is always on, for every call",
    ),
    "rtp_draining_idle_timeout": (
        "how long a closed call's RTP port keeps draining before reuse",
        "a released port waits behind the 64 most recently released ones instead (docs/security.md)",
    ),
    "rtp_draining_duration": (
        "the longest a closed call's RTP port drains",
        "a released port waits behind the 64 most recently released ones instead (docs/security.md)",
    ),
    "udp_max_payload": (
        "the largest UDP datagram it sends",
        "SIP messages go out whole; a peer that cannot take large datagrams needs TCP (transport on the trunk)",
    ),
    "tcp": (
        "tcp.dial_port: the local port range for outgoing TCP connections",
        "outgoing TCP connections use the operating system's ephemeral ports",
    ),
    "pprof_port": (
        "serves Go's pprof profiler",
        "no Go runtime to profile; profile the Python process with py-spy (docs/benchmarks.md)",
    ),
    "jaeger_url": ("sends OpenTelemetry traces to Jaeger", "no tracing: logs carry each call's IDs instead"),
    "experimental": (
        "experimental.inbound_wait_ack: wait for the ACK of the 200 before the call goes on",
        "always so: an inbound call proceeds once our 200 is ACKed",
    ),
    "logging.sample": ("samples repeated log lines", "floods are aggregated instead (docs/security.md)"),
    **{
        f"logging.{key}": (f"logging.sample's {what}", "floods are aggregated instead (docs/security.md)")
        for key, what in (
            ("sample_initial", "lines logged before sampling starts"),
            ("sample_interval", "share of lines logged once sampling"),
            ("item_sample_seconds", "per participant or track sampling window"),
            ("item_sample_initial", "per participant or track lines before sampling"),
            ("item_sample_interval", "per participant or track share of lines once sampling"),
        )
    },
    "logging.pion_level": ("the level of the pion WebRTC library's logs", "no pion here"),
}
"""Go key → (what it does in the Go service, why it has no effect here)."""


def describe(key: str) -> str:
    """``key (reason)`` for the start-up line."""
    return f"{key} ({NO_EFFECT[key][1]})"
