"""How good a call sounds, per direction: loss, jitter, concealment, round trip, and an estimated MOS.

Caller → bridge is measured where we receive it (RFC 3550 counts, our jitter buffer and concealment); bridge →
caller is what the caller's RTCP receiver reports say (when it sends any). Each direction gets a mean opinion
score from the E-model (ITU-T G.107, simplified as usual for VoIP monitoring: only the delay impairment Id and the
equipment impairment with packet loss Ie,eff; the other factors at their defaults):

    R = 93.2 - Id - Ie,eff          Ie,eff = Ie + (95 - Ie) · Ppl / (Ppl / BurstR + Bpl)
    Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)     (d: one-way delay in ms)
    MOS = 1 + 0.035 R + 7·10⁻⁶ R (R - 60)(100 - R)  for 0 < R < 100

with random loss (BurstR = 1). Ie and Bpl per codec come from ITU-T G.113 Appendix I for G.711 with packet loss
concealment (Ie 0, Bpl 25.1); G.722 and Opus have no narrowband values there, so they are scored as G.711 — an
estimate to compare calls with one another, not a listening test. The one-way delay is half the RTCP round trip
when known, plus the jitter buffer's depth.

Sans-IO: `QualityMeter.sample(now)` reads a stream's counters and keeps a bounded series (for plots).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sipbridge.media.stream import MediaStream

INTERVAL = 5.0
"""Seconds between samples: the loss per interval, the plots, and the participant attributes use it."""
KEEP_SAMPLES = 720
"""Samples kept per call (an hour at INTERVAL): older ones go."""
CODEC_IMPAIRMENT = {"PCMU": (0.0, 25.1), "PCMA": (0.0, 25.1), "G722": (0.0, 25.1), "opus": (0.0, 25.1)}
"""(Ie, Bpl) per codec: ITU-T G.113 Appendix I's G.711 with PLC, for all (see the module docstring)."""


def e_model_mos(codec: str, loss: float, one_way_delay_ms: float) -> float:
    """The estimated mean opinion score (1..4.5) for ``loss`` (0..1) and ``one_way_delay_ms``."""
    ie, bpl = CODEC_IMPAIRMENT.get(codec, (0.0, 25.1))
    ppl = max(0.0, min(1.0, loss)) * 100
    ie_eff = ie + (95 - ie) * ppl / (ppl + bpl)
    d = max(0.0, one_way_delay_ms)
    id_ = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    r = 93.2 - id_ - ie_eff
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return round(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r), 2)


@dataclass(frozen=True)
class DirectionQuality:
    packets: int
    lost: int
    """RFC 3550 cumulative packets lost."""
    loss_pct: float
    """Over the call so far."""
    interval_loss_pct: float
    """Over the last INTERVAL."""
    jitter_ms: float
    mos: float
    late: int = 0
    """Packets that came after their turn or twice (receiving side only)."""
    discarded: int = 0
    """Packets the jitter buffer dropped to cut latency."""
    concealed_ms: float = 0.0
    """Audio made up for lost packets."""


@dataclass(frozen=True)
class QualitySample:
    at: float
    """Seconds since the call's media started."""
    from_caller: DirectionQuality
    to_caller: DirectionQuality | None
    """None while the caller has sent no receiver report."""
    round_trip_ms: float | None


class QualityMeter:
    """Samples one call's stream every INTERVAL (the owner calls `sample`), keeping the last KEEP_SAMPLES."""

    def __init__(self, started: float) -> None:
        self._started = started
        self.samples: deque[QualitySample] = deque(maxlen=KEEP_SAMPLES)
        self._prior: tuple[int, int] = (0, 0)  # (expected, received) at the previous sample

    def sample(self, stream: MediaStream, now: float) -> QualitySample:
        received = stream.received
        expected = received.packets + received.cumulative_lost
        prior_expected, prior_received = self._prior
        self._prior = (expected, received.packets)
        interval_expected = expected - prior_expected
        interval_lost = interval_expected - (received.packets - prior_received)
        rate = stream.codec.clock_rate
        view = stream.sent.peer_view
        round_trip = view.round_trip if view is not None else None
        jitter = stream.jitter_buffer
        buffer_ms = jitter.target_depth * stream.ptime_ms
        delay_ms = (round_trip * 1000 / 2 if round_trip is not None else 0.0) + buffer_ms
        loss = received.cumulative_lost / expected if expected > 0 else 0.0
        interval_loss = interval_lost / interval_expected if interval_expected > 0 else 0.0
        from_caller = DirectionQuality(
            packets=received.packets,
            lost=max(0, received.cumulative_lost),
            loss_pct=round(max(0.0, loss) * 100, 2),
            interval_loss_pct=round(max(0.0, interval_loss) * 100, 2),
            jitter_ms=round(received.jitter / rate * 1000, 2),
            mos=e_model_mos(stream.config.codec, max(0.0, interval_loss if interval_expected > 0 else loss), delay_ms),
            late=jitter.late_or_duplicate,
            discarded=jitter.dropped_for_latency,
            concealed_ms=round(stream.concealed_frames * stream.ptime_ms, 1),
        )
        to_caller = None
        if view is not None:
            to_caller = DirectionQuality(
                packets=stream.sent.packets,
                lost=max(0, view.cumulative_lost),
                loss_pct=round(max(0, view.cumulative_lost) / max(1, stream.sent.packets) * 100, 2),
                interval_loss_pct=round(view.fraction_lost * 100, 2),
                jitter_ms=round(view.jitter / rate * 1000, 2),
                mos=e_model_mos(stream.config.codec, view.fraction_lost, delay_ms),
            )
        sample = QualitySample(
            round(now - self._started, 3),
            from_caller,
            to_caller,
            round(round_trip * 1000, 1) if round_trip is not None else None,
        )
        self.samples.append(sample)
        return sample
