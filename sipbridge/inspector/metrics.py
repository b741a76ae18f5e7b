"""Prometheus metrics of calls and their media quality (the Grafana dashboard in deploy/grafana reads these),
beside the Go service's (sipbridge.stats: packets, durations, endings by reason) which they do not repeat.

Call outcomes come from the traces as they end (`call_ended`, a `TraceBook` end listener): every INVITE attempt
counts once, by direction, trunk and the SIP status it got. Quality comes from the calls' 5-second samples
(`observe_quality`): each interval of audio is one observation, so the histograms weigh calls by their length.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from sipbridge.inspector.trace import CallTrace
from sipbridge.media.quality import DirectionQuality, QualitySample

LOW_MOS = 3.5
"""Below this a call counts in ``sipbridge_active_calls_low_mos`` (\"many users dissatisfied\" in G.107's table)."""

CALLS = Counter(
    "sipbridge_calls_total",
    "Call attempts that ended, by direction, trunk and the final SIP status of their INVITE ('none': no answer)",
    ["direction", "trunk", "status"],
)
SETUP = Histogram(
    "sipbridge_call_setup_seconds",
    "From the INVITE to its first ringing, progress or final answer (post-dial delay)",
    ["direction"],
    buckets=(0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30),
)
MOS = Histogram(
    "sipbridge_rtp_mos",
    "E-model MOS estimate per 5 s of audio; stream 'received' is the caller's audio at the bridge, 'sent' ours "
    "as the caller's RTCP reports it",
    ["stream", "codec", "trunk"],
    buckets=(1.5, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5),
)
LOSS = Histogram(
    "sipbridge_rtp_loss_ratio",
    "Packet loss per 5 s of audio (RFC 3550: expected minus received)",
    ["stream"],
    buckets=(0.0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0),
)
JITTER = Histogram(
    "sipbridge_rtp_jitter_seconds",
    "RFC 3550 interarrival jitter, sampled every 5 s",
    ["stream"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2),
)
ROUND_TRIP = Histogram(
    "sipbridge_rtcp_round_trip_seconds",
    "RTCP round-trip time to callers that send receiver reports, sampled every 5 s",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0),
)
LOST = Counter("sipbridge_rtp_lost_packets_total", "RTP packets lost (RFC 3550)", ["stream"])
LATE = Counter("sipbridge_rtp_late_packets_total", "Received RTP packets that came after their turn, or twice")
DISCARDED = Counter("sipbridge_rtp_discarded_packets_total", "Received RTP packets the jitter buffer dropped")
CONCEALED = Counter("sipbridge_rtp_concealed_seconds_total", "Audio made up in place of lost packets")
LOW_QUALITY = Gauge("sipbridge_active_calls_low_mos", f"Calls in progress whose last 5 s scored a MOS below {LOW_MOS}")


def call_ended(trace: CallTrace) -> None:
    summary = trace.summary
    direction = summary.direction or "inbound"  # calls no flow took were INVITEs the node received
    CALLS.labels(direction, summary.trunk_id, str(trace.sip_status or "none")).inc()
    if trace.setup_at is not None:
        SETUP.labels(direction).observe(max(0.0, trace.setup_at - trace.started_at))


def observe_quality(sample: QualitySample, previous: QualitySample | None, codec: str, trunk: str) -> None:
    """One 5-second sample of a call (``previous``: the one before, for the counters' increments)."""
    _direction("received", sample.from_caller, previous.from_caller if previous else None, codec, trunk)
    if sample.to_caller is not None:
        before = previous.to_caller if previous is not None else None
        _direction("sent", sample.to_caller, before, codec, trunk)
    if sample.round_trip_ms is not None:
        ROUND_TRIP.observe(sample.round_trip_ms / 1000)
    rx, old = sample.from_caller, previous.from_caller if previous is not None else None
    LATE.inc(max(0, rx.late - (old.late if old else 0)))
    DISCARDED.inc(max(0, rx.discarded - (old.discarded if old else 0)))
    CONCEALED.inc(max(0.0, rx.concealed_ms - (old.concealed_ms if old else 0.0)) / 1000)


def _direction(stream: str, now: DirectionQuality, before: DirectionQuality | None, codec: str, trunk: str) -> None:
    MOS.labels(stream, codec, trunk).observe(now.mos)
    LOSS.labels(stream).observe(now.interval_loss_pct / 100)
    JITTER.labels(stream).observe(now.jitter_ms / 1000)
    LOST.labels(stream).inc(max(0, now.lost - (before.lost if before else 0)))


def watch_low_quality(active: Callable[[], list[CallTrace]]) -> None:
    """Reads ``sipbridge_active_calls_low_mos`` from the calls in progress whenever /metrics is scraped."""

    def low() -> int:
        rows = (trace.quality.last() for trace in active())
        return sum(1 for row in rows if row is not None and (row["rx_mos"] or 5.0) < LOW_MOS)

    LOW_QUALITY.set_function(low)
