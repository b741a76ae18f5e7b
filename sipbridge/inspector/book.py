"""The node's traces: every call's SIP messages, filed by Call-ID as the endpoint sends and receives them.

The SIP endpoint hands every message to `TraceBook.record` (its edge, where bytes meet sockets). An INVITE that
starts a call opens a trace; later messages with its Call-ID join it. The call flow that takes the call `claim`s
the trace (attaching what it knows, `CallSummary`) and `end`s it when the call is over. INVITEs no flow takes
(refused by the stack itself: overload, loops, bad extensions) end on their own once their messages stop.

Ended traces are kept for ``keep_calls`` calls and within ``max_megabytes``, the oldest dropped first: the book's
memory does not grow with the number of calls a node has seen.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from sipbridge.config import InspectorSettings
from sipbridge.inspector.masking import mask_message
from sipbridge.inspector.sipscan import MessageFacts, scan
from sipbridge.inspector.trace import CallSummary, CallTrace, TracedMessage
from sipbridge.media.quality import QualitySample
from sipbridge.sip.transaction import Address

log = logging.getLogger(__name__)

UNCLAIMED_LINGER = 32.0
"""Seconds an unclaimed trace stays open after its last message (64·T1: a server transaction's longest life)."""
UNCLAIMED_LINGER_FINAL = 4.0
"""The same once its INVITE got a final answer (only the ACK and retransmissions can follow)."""
MIN_UNCLAIMED = 64
TRANSFER_WINDOW = 64.0
"""Seconds after our REFER within which a call to its target is taken as the transfer's second leg."""
_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)")
_AOR = re.compile(r"sips?:([^;>\s]+)")

MessageListener = Callable[[CallTrace, TracedMessage], None]
EndListener = Callable[[CallTrace], None]


class TraceBook:
    def __init__(self, settings: InspectorSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.local_address: Callable[[str], tuple[str, int]] = lambda transport: ("0.0.0.0", 0)
        """Our address for a transport (set once the endpoint listens)."""
        self.message_listeners: list[MessageListener] = []
        """Told of every message kept (HEP export)."""
        self.end_listeners: list[EndListener] = []
        """Told of every call attempt that ended (metrics)."""
        self._ids = itertools.count(1)
        self._open: dict[str, CallTrace] = {}
        self._unclaimed: OrderedDict[str, CallTrace] = OrderedDict()  # by Call-ID, least recently active first
        self._ended: OrderedDict[str, CallTrace] = OrderedDict()  # by trace ID, oldest first
        self._by_call_id: dict[str, CallTrace] = {}
        self._by_id: dict[str, CallTrace] = {}
        self._by_lk_call_id: dict[str, CallTrace] = {}
        self._transfers: deque[tuple[float, str, str]] = deque(maxlen=64)  # (when, target user, trace ID)
        self._registrations: list[CallTrace] = []
        self.faults = 0
        self.size = 0
        """Bytes all held traces take (their messages, records and quality series)."""

    # -- the endpoint's tap --------------------------------------------------------------------------------------

    def record(self, data: bytes, outgoing: bool, peer: Address) -> None:
        """One SIP message the endpoint sent (``outgoing``) to or received from ``peer``. Never raises: a fault
        here must not cost the call its message."""
        try:
            self._record(data, outgoing, peer)
        except Exception:
            self.faults += 1
            if self.faults == 1:  # a bug, not input: once is enough to see it, the count says how often
                log.exception("tracing a SIP message failed (the message went on; faults are counted)")

    def _record(self, data: bytes, outgoing: bool, peer: Address) -> None:
        now = self.clock()
        self.sweep(now)
        facts = scan(data)
        if facts is None:
            return
        trace = self._by_call_id.get(facts.call_id)
        if facts.starts_dialog and (trace is None or (trace.ended and facts.cseq != trace.initial_cseq)):
            trace = self._open_trace(facts, now, trace)
        elif trace is None and outgoing and facts.is_request and facts.method == "REGISTER":
            trace = self._open_registration(facts, now)
        if trace is None:
            return
        masked = mask_message(data, trace.secrets, trace.pin_entry)
        message = TracedMessage(
            trace.count, now, outgoing, peer.transport, self.local_address(peer.transport), (peer.host, peer.port),
            masked, facts,
        )  # fmt: skip
        self.size += trace.add(message)
        if facts.call_id in self._unclaimed:
            self._unclaimed.move_to_end(facts.call_id)
        if outgoing and facts.is_request and facts.method == "REFER" and facts.refer_to:
            user = _user_of(facts.refer_to)
            if user:
                self._transfers.append((now, user, trace.id))
        for listener in self.message_listeners:
            listener(trace, message)
        self._evict()

    def _open_trace(self, facts: MessageFacts, now: float, previous: CallTrace | None) -> CallTrace:
        """A new call, or a known one starting again (the INVITE retried with credentials after a challenge)."""
        if previous is not None:
            self._ended.pop(previous.id, None)
            trace = previous
            trace.ended_at = None
            trace.claimed = False
        else:
            trace = CallTrace(str(next(self._ids)), facts.call_id, self.settings.max_messages, now)
            self._by_call_id[facts.call_id] = trace
            self._by_id[trace.id] = trace
            self._link_transfer(trace, facts, now)
            self._link_replaced(trace, facts)
        self._open[facts.call_id] = trace
        self._unclaimed[facts.call_id] = trace
        if len(self._unclaimed) > max(self.settings.keep_calls, MIN_UNCLAIMED):
            _, oldest = next(iter(self._unclaimed.items()))
            self.end(oldest)
        return trace

    def _open_registration(self, facts: MessageFacts, now: float) -> CallTrace:
        """One of our registrations: open as long as the node runs, its REGISTER refreshes joining it."""
        trace = CallTrace(str(next(self._ids)), facts.call_id, self.settings.max_messages, now, registration=True)
        trace.summary.to_number = _address_of_record(facts.to)
        self._by_call_id[facts.call_id] = trace
        self._by_id[trace.id] = trace
        self._registrations.append(trace)
        return trace

    def _link_replaced(self, trace: CallTrace, facts: MessageFacts) -> None:
        """An INVITE with Replaces takes over one of our calls: that call's second leg."""
        replaced = self._by_call_id.get(facts.replaces.partition(";")[0].strip()) if facts.replaces else None
        if replaced is not None and replaced is not trace:
            replaced.legs.append(trace.id)
            trace.legs.append(replaced.id)

    def _link_transfer(self, trace: CallTrace, facts: MessageFacts, now: float) -> None:
        """A call to the target of one of our recent REFERs is that transfer's second leg."""
        users = {_user_of(facts.request_uri), _user_of(facts.to)} - {""}
        for entry in self._transfers:
            at, user, origin_id = entry
            origin = self._by_id.get(origin_id)
            if user in users and now - at <= TRANSFER_WINDOW and origin is not None:
                origin.legs.append(trace.id)
                trace.legs.append(origin.id)
                self._transfers.remove(entry)
                return

    # -- the call flows' side ------------------------------------------------------------------------------------

    def claim(self, call_id: str, summary: CallSummary) -> CallTrace:
        """The trace of the call with ``call_id``, now owned by a flow that fills ``summary`` and will `end` it."""
        trace = self._by_call_id.get(call_id)
        if trace is None:  # the endpoint's tap did not see it start (a flow driven without one)
            now = self.clock()
            trace = CallTrace(str(next(self._ids)), call_id, self.settings.max_messages, now)
            self._by_call_id[call_id] = trace
            self._by_id[trace.id] = trace
        elif trace.ended:
            self._ended.pop(trace.id, None)
            trace.ended_at = None
        self._unclaimed.pop(call_id, None)
        self._open[call_id] = trace
        trace.claimed = True
        trace.summary = summary
        if summary.lk_call_id:
            self._by_lk_call_id[summary.lk_call_id] = trace
        return trace

    def add_quality(self, trace: CallTrace, sample: QualitySample) -> None:
        self.size += trace.add_quality(sample)

    def end(self, trace: CallTrace) -> None:
        """The call is over: its trace joins the ended ones (later messages with its Call-ID still join it)."""
        if trace.ended:
            return
        trace.ended_at = self.clock()
        self._open.pop(trace.call_id, None)
        self._unclaimed.pop(trace.call_id, None)
        self._ended[trace.id] = trace
        if not trace.counted:
            trace.counted = True
            for listener in self.end_listeners:
                listener(trace)
        self._evict()

    def sweep(self, now: float) -> None:
        """Ends unclaimed traces whose messages have stopped."""
        while self._unclaimed:
            trace = next(iter(self._unclaimed.values()))
            linger = UNCLAIMED_LINGER_FINAL if trace.sip_status else UNCLAIMED_LINGER
            if now - trace.last_at < linger:
                return
            self.end(trace)

    def _evict(self) -> None:
        budget = self.settings.max_megabytes << 20
        while self._ended and (len(self._ended) > self.settings.keep_calls or self.size > budget):
            _, oldest = self._ended.popitem(last=False)
            self.size -= oldest.size
            self._by_id.pop(oldest.id, None)
            if self._by_call_id.get(oldest.call_id) is oldest:
                del self._by_call_id[oldest.call_id]
            if self._by_lk_call_id.get(oldest.summary.lk_call_id) is oldest:
                del self._by_lk_call_id[oldest.summary.lk_call_id]

    # -- reading -------------------------------------------------------------------------------------------------

    def get(self, key: str) -> CallTrace | None:
        """A held trace by its ID, LiveKit call ID (``SCL_...``) or SIP Call-ID."""
        return self._by_id.get(key) or self._by_lk_call_id.get(key) or self._by_call_id.get(key)

    def registrations(self) -> list[CallTrace]:
        """Our registrations (config ``registrations``), in the order they started."""
        return list(self._registrations)

    def active(self) -> list[CallTrace]:
        """Calls in progress, newest first."""
        self.sweep(self.clock())
        return sorted(self._open.values(), key=lambda t: t.started_at, reverse=True)

    def ended(self) -> list[CallTrace]:
        """Ended calls still held, most recently ended first."""
        self.sweep(self.clock())
        return list(reversed(self._ended.values()))

    def __len__(self) -> int:
        return len(self._by_id)


def _address_of_record(to: str) -> str:
    """``user@host`` of a To header value."""
    match = _AOR.search(to)
    return match.group(1) if match else to


def _user_of(uri: str) -> str:
    """The user part of the first SIP or tel URI in ``uri`` (a header value or a Request-URI)."""
    match = _USER.search(uri)
    return match.group(1) if match else ""
