"""A call's media quality, every 5 seconds: into its trace (the inspector's plots), into Prometheus, and onto the
participant as ``sip.quality.*`` attributes so an agent can react to a bad line.

The figures are `sipbridge.media.quality.QualityMeter`'s, one meter per media stream (a re-INVITE that changes
codec or address starts a new stream, and a new meter on the same time axis). The attributes describe the last
5 seconds of the caller's audio as the bridge received it; they are sent only when their text changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from sipbridge.calls.seams import CallParticipant, PhoneRtp
from sipbridge.inspector import metrics
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.trace import CallSummary, CallTrace
from sipbridge.media.quality import INTERVAL, QualityMeter, QualitySample
from sipbridge.media.stream import MediaStream

log = logging.getLogger(__name__)

ATTR_MOS = "sip.quality.mos"
ATTR_LOSS = "sip.quality.lossPct"
ATTR_JITTER = "sip.quality.jitterMs"
ATTRIBUTE_TIMEOUT = 2.0
"""Seconds an attribute update may take before that sample's update is given up."""


class WatchedCall(Protocol):
    """What the watch reads of its call (a `BridgedCall`), which fills it in as it goes."""

    @property
    def rtp(self) -> PhoneRtp | None: ...

    @property
    def trace(self) -> CallTrace | None: ...

    @property
    def participant(self) -> CallParticipant | None: ...

    @property
    def summary(self) -> CallSummary: ...


def quality_attributes(sample: QualitySample) -> dict[str, str]:
    rx = sample.from_caller
    return {ATTR_MOS: f"{rx.mos:.2f}", ATTR_LOSS: f"{rx.interval_loss_pct:.1f}", ATTR_JITTER: f"{rx.jitter_ms:.1f}"}


class QualityWatch:
    def __init__(self, call: WatchedCall, book: TraceBook, started: float) -> None:
        """``started``: when the call's media began, on the media clock (time.monotonic)."""
        self.call = call
        self.book = book
        self.started = started
        self._meter: QualityMeter | None = None
        self._stream: MediaStream | None = None
        self._previous: QualitySample | None = None
        self._attributes: dict[str, str] = {}

    def sample(self, now: float) -> QualitySample | None:
        """Measures the call now (also once more as it ends); None before media started."""
        rtp = self.call.rtp
        stream = rtp.stream if rtp is not None else None
        if stream is None:
            return None
        if stream is not self._stream:
            self._stream, self._meter, self._previous = stream, QualityMeter(self.started), None
        assert self._meter is not None
        sample = self._meter.sample(stream, now)
        metrics.observe_quality(sample, self._previous, stream.config.codec, self.call.summary.trunk_id)
        self._previous = sample
        trace = self.call.trace
        if trace is not None:
            self.book.add_quality(trace, sample)
        return sample

    async def run(self, clock: Callable[[], float]) -> None:
        """Samples every INTERVAL until cancelled, updating the participant's attributes when they change."""
        while True:
            await asyncio.sleep(INTERVAL)
            sample = self.sample(clock())
            participant = self.call.participant
            if sample is None or participant is None or participant.end_reason is not None:
                continue
            attributes = quality_attributes(sample)
            if attributes != self._attributes:
                try:
                    await asyncio.wait_for(participant.update_attributes(attributes), ATTRIBUTE_TIMEOUT)
                    self._attributes = attributes
                except Exception as exc:  # the room side is slow or gone: the next sample tries again
                    log.debug("could not update quality attributes: %s", exc)
