"""One call's trace: its SIP messages as they crossed the wire (masked), what the call flow knew of it, and its
media quality over time.

A trace is bounded whatever the call does: past ``max_messages`` it keeps the first and the last halves and counts
the ones in between, and its quality series halves its resolution rather than grow past ``MAX_SAMPLES``.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from sipbridge.inspector.masking import mask_message
from sipbridge.inspector.sipscan import MessageFacts
from sipbridge.media.quality import DirectionQuality, QualitySample

MAX_SAMPLES = 360
"""Quality samples kept per call; a longer call keeps every other one (30 minutes at full resolution)."""
MESSAGE_OVERHEAD = 400
"""Bytes a kept message costs beside its text (its record and the parsed facts), for the memory budget."""


@dataclass(frozen=True, slots=True)
class TracedMessage:
    index: int
    """Position in its call's trace, from 0 (omitted messages keep their numbers)."""
    at: float
    """Unix time it was sent or received."""
    outgoing: bool
    transport: str
    local: tuple[str, int]
    peer: tuple[str, int]
    data: bytes
    """The message as on the wire, secrets masked."""
    facts: MessageFacts

    @property
    def source(self) -> tuple[str, int]:
        return self.local if self.outgoing else self.peer

    @property
    def destination(self) -> tuple[str, int]:
        return self.peer if self.outgoing else self.local


@dataclass(slots=True)
class CallSummary:
    """What the call flow knows of a call, filled in as it learns it (empty strings until then)."""

    lk_call_id: str = ""
    direction: str = ""
    """``inbound`` or ``outbound``."""
    trunk_id: str = ""
    rule_id: str = ""
    room: str = ""
    participant: str = ""
    from_number: str = ""
    to_number: str = ""
    status: str = ""
    """The participant's ``sip.callStatus`` (``ringing``, ``active``, ...)."""
    codec: str = ""
    ending: str = ""
    """How the call ended, in words (``caller hung up while ringing``, ``wrong PIN``, ...)."""


COLUMNS = (
    "at",
    "rx_packets",
    "rx_lost",
    "rx_loss_pct",
    "rx_interval_loss_pct",
    "rx_jitter_ms",
    "rx_mos",
    "rx_late",
    "rx_discarded",
    "rx_concealed_ms",
    "tx_packets",
    "tx_lost",
    "tx_loss_pct",
    "tx_interval_loss_pct",
    "tx_jitter_ms",
    "tx_mos",
    "rtt_ms",
)
"""A quality sample as a row: ``rx`` is the caller's audio as the bridge received it, ``tx`` ours as the caller's
RTCP reports describe it (NaN without reports), ``rtt_ms`` the RTCP round trip (NaN when unknown)."""


class QualitySeries:
    """Quality samples as rows of floats in one array (a few hundred bytes per sample, not objects)."""

    def __init__(self) -> None:
        self._rows = array("d")
        self.stride = 1
        """Samples taken per sample kept (doubles each time the series fills up)."""
        self._skipped = 0

    def __len__(self) -> int:
        return len(self._rows) // len(COLUMNS)

    @property
    def nbytes(self) -> int:
        return self._rows.itemsize * len(self._rows)

    def add(self, sample: QualitySample) -> None:
        self._skipped += 1
        if self._skipped < self.stride:
            return
        self._skipped = 0
        self._rows.extend(_row(sample))
        if len(self) > MAX_SAMPLES:
            width = len(COLUMNS)
            kept = array("d")
            for i in range(0, len(self), 2):
                kept.extend(self._rows[i * width : (i + 1) * width])
            self._rows = kept
            self.stride *= 2

    def rows(self) -> Iterator[dict[str, float | None]]:
        for i in range(len(self)):
            yield self._row_at(i)

    def last(self) -> dict[str, float | None] | None:
        return self._row_at(len(self) - 1) if len(self) else None

    def _row_at(self, i: int) -> dict[str, float | None]:
        width = len(COLUMNS)
        values = self._rows[i * width : (i + 1) * width]
        return {name: (None if math.isnan(v) else v) for name, v in zip(COLUMNS, values, strict=True)}


def _row(sample: QualitySample) -> list[float]:
    nan = math.nan
    rx = sample.from_caller
    tx: DirectionQuality | None = sample.to_caller
    rtt = sample.round_trip_ms if sample.round_trip_ms is not None else nan
    rx_part = [rx.packets, rx.lost, rx.loss_pct, rx.interval_loss_pct, rx.jitter_ms, rx.mos, rx.late, rx.discarded]
    tx_part = (
        [tx.packets, tx.lost, tx.loss_pct, tx.interval_loss_pct, tx.jitter_ms, tx.mos] if tx is not None else [nan] * 6
    )
    return [sample.at, *rx_part, rx.concealed_ms, *tx_part, rtt]


class CallTrace:
    """The messages of one Call-ID: a call (its retries after a challenge included), or a registration of ours
    (every REGISTER exchange that keeps it up)."""

    def __init__(
        self, trace_id: str, call_id: str, max_messages: int, started: float, registration: bool = False
    ) -> None:
        self.id = trace_id
        self.call_id = call_id
        self.registration = registration
        self.summary = CallSummary()
        self.max_messages = max_messages
        self._head: list[TracedMessage] = []
        self._tail: deque[TracedMessage] = deque(maxlen=max_messages - max_messages // 2)
        self.omitted = 0
        self.count = 0
        self.size = 0
        """Bytes the trace holds (messages and their records, the quality series), for the book's budget."""
        self.started_at = started
        self.last_at = started
        self.ended_at: float | None = None
        self.claimed = False
        """A call flow owns this call (it ends the trace); unclaimed traces end when their messages stop."""
        self.initial_cseq = 0
        """CSeq of the latest INVITE that started the call (a retry after a challenge starts it again)."""
        self.sip_status = 0
        """Final status of that INVITE (0: none yet, or none ever: dropped); a registration's latest REGISTER's."""
        self.setup_at: float | None = None
        """When that INVITE got its first ringing, progress or final answer."""
        self.answered_at: float | None = None
        self.quality = QualitySeries()
        self.secrets: list[bytes] = []
        self.pin_entry = False
        """The call is collecting a PIN: DTMF in SIP INFO is masked."""
        self.legs: list[str] = []
        """IDs of traces linked to this one: the new call a transfer of this one made, or the call it came from."""
        self.counted = False
        """This attempt's outcome went into the metrics."""

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def duration(self, now: float) -> float:
        return (self.ended_at if self.ended_at is not None else now) - self.started_at

    def messages(self) -> list[TracedMessage]:
        return [*self._head, *self._tail]

    def add(self, message: TracedMessage) -> int:
        """Keeps ``message``; returns the change of ``size`` in bytes."""
        before = self.size
        self.count += 1
        self.last_at = message.at
        cost = len(message.data) + MESSAGE_OVERHEAD
        if len(self._head) < self.max_messages // 2:
            self._head.append(message)
        else:
            if len(self._tail) == self._tail.maxlen:
                dropped = self._tail[0]
                self.omitted += 1
                self.size -= len(dropped.data) + MESSAGE_OVERHEAD
            self._tail.append(message)
        self.size += cost
        self._note_outcome(message)
        return self.size - before

    def _note_outcome(self, message: TracedMessage) -> None:
        facts = message.facts
        if self.registration:
            if not facts.is_request and facts.method == "REGISTER" and facts.status >= 200:
                self.sip_status = facts.status
            return
        if facts.starts_dialog:
            if facts.cseq != self.initial_cseq:  # a new attempt (a retry after 401/407), not a retransmission
                self.initial_cseq, self.sip_status, self.setup_at, self.answered_at = facts.cseq, 0, None, None
                self.counted = False
            return
        if facts.is_request or facts.method != "INVITE" or facts.cseq != self.initial_cseq:
            return
        if self.setup_at is None and (facts.status in (180, 183) or facts.status >= 200):
            self.setup_at = message.at
        if facts.status >= 200 and not self.sip_status:
            self.sip_status = facts.status
            if facts.status < 300:
                self.answered_at = message.at

    def add_quality(self, sample: QualitySample) -> int:
        before = self.quality.nbytes
        self.quality.add(sample)
        change = self.quality.nbytes - before
        self.size += change
        return change

    def add_secret(self, secret: str) -> None:
        """Masks ``secret`` from now on and in the messages kept so far (masking keeps lengths: ``size`` holds)."""
        raw = secret.encode()
        if not raw or raw in self.secrets:
            return
        self.secrets.append(raw)
        self._head = [self._remask(m) for m in self._head]
        self._tail = deque((self._remask(m) for m in self._tail), maxlen=self._tail.maxlen)

    def _remask(self, message: TracedMessage) -> TracedMessage:
        data = mask_message(message.data, self.secrets)
        if data == message.data:
            return message
        return TracedMessage(
            message.index, message.at, message.outgoing, message.transport, message.local, message.peer, data,
            message.facts,
        )  # fmt: skip
