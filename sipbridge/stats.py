"""The Go SIP service's Prometheus metrics, under its names and labels, so its dashboards and alerts work here.

Every metric carries the node's ``node_id`` label, as the Go service's do. Counters are exposed under exactly
the Go names (``livekit_sip_invite_requests``, not ``..._total``: prometheus_client adds that suffix to every
counter, so the counters are kept and rendered here); gauges and histograms are prometheus_client's, in a
registry of this object's own. `Stats.exposition` renders both.

A call reports through its `CallStats` (what the Go service's CallMonitor does): the INVITE, its acceptance or
refusal, the call's start and end, how it ended (``result``: success, client_error, server_error; ``reason``),
the durations of its stages, and its RTP packets, which are read from the call's counters when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, Histogram, disable_created_metrics, generate_latest

# Go's client exposes no ``_created`` series beside its histograms: neither do we.
disable_created_metrics()  # type: ignore[no-untyped-call]

OP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 180)
"""Seconds, for short operations (an INVITE's check, a join)."""
LONG_BUCKETS = (1, 10, 60, 600, 1800, 3600, 6 * 3600, 12 * 3600, 24 * 3600)
"""Seconds, for sessions and calls."""
SIZE_BUCKETS = (100, 250, 500, 750, 1000, 1250, 1500)
UNKNOWN_PROVIDER = "unknown"

PacketCounts = Mapping[tuple[str, str], int]
"""RTP packets of a call so far by (op, payload): ("recv", "PCMU"), ("send", "telephone-event")..."""


class Counter:
    """A labelled counter rendered under exactly its name, as Go's client renders counters."""

    def __init__(self, name: str, documentation: str, labels: Iterable[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        key = tuple(values)
        if len(key) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.labels)} label values needed, got {len(key)}")
        self.values[key] = self.values.get(key, 0.0) + amount

    def render(self, extra: Mapping[tuple[str, ...], float] | None = None) -> str:
        """The text exposition; ``extra`` adds not-yet-folded counts (live calls) to the kept ones."""
        values = dict(self.values)
        for key, amount in (extra or {}).items():
            values[key] = values.get(key, 0.0) + amount
        lines = [f"# HELP {self.name} {_escape_help(self.documentation)}", f"# TYPE {self.name} counter"]
        for key, value in sorted(values.items()):
            labels = ",".join(f'{name}="{_escape_label(v)}"' for name, v in zip(self.labels, key, strict=True))
            lines.append(f"{self.name}{{{labels}}} {float(value)!r}")
        return "\n".join(lines) + "\n"


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


@dataclass(frozen=True)
class Termination:
    """How a call ended, in the Go service's terms: ``result`` success / client_error / server_error, and a
    short ``reason`` (``hangup``, ``no-trunk``, ``busy``...)."""

    result: str
    reason: str


def success(reason: str) -> Termination:
    return Termination("success", reason)


def client_error(reason: str) -> Termination:
    return Termination("client_error", reason)


def server_error(reason: str) -> Termination:
    return Termination("server_error", reason)


def indeterminate(reason: str) -> Termination:
    """An ending nobody can be blamed for (the media stopped)."""
    return Termination("indeterminate", reason)


_REFUSED_BY_PEER = {
    401: client_error("auth-required"),
    407: client_error("auth-required"),
    403: client_error("forbidden"),
    404: client_error("not-found"),
    408: client_error("request-timeout"),
    480: client_error("unavailable"),
    486: client_error("busy"),
    488: client_error("not-acceptable"),
}


def refused_by_peer(status: int, reason: str) -> Termination:
    """How a call our INVITE placed ended when the callee refused it with ``status``, as the Go service sorts
    those (a carrier's 5xx is theirs, a trunk's rate limit its customer's)."""
    known = _REFUSED_BY_PEER.get(status)
    if known is not None:
        return known
    if 400 <= status < 500:
        return client_error(f"client-error-{status}")
    if 500 <= status < 600:
        text = reason.lower()
        if "cps limit exceeded" in text:
            return client_error("cps-limit-exceeded")
        if "concurrent call limit exceeded" in text:
            return client_error("concurrent-limit-exceeded")
        return Termination("upstream_error", f"upstream-server-error-{status}")
    if 600 <= status < 700:
        return client_error(f"global-decline-{status}")
    return server_error("invite-failed")


def status_label(status: int, reason: str) -> str:
    """An INVITE error's ``reason`` label for a refusal: ``486-BusyHere`` (``status-599`` without a phrase)."""
    return f"{status}-{reason.replace(' ', '')}" if reason else f"status-{status}"


class Stats:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.registry = CollectorRegistry(auto_describe=True)
        n = node_id

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(f"livekit_sip_{name}", documentation, ("node_id", *labels))

        self.invite_requests_raw = counter("invite_requests_raw", "Number of unvalidated SIP INVITE requests received")
        self.invite_requests = counter("invite_requests", "Number of valid SIP INVITE requests received", "dir")
        self.invite_accepted = counter(
            "invite_accepted", "Number of accepted SIP INVITE requests (that matched a trunk and passed auth)",
            "dir", "to",
        )  # fmt: skip
        self.invite_error = counter("invite_error", "Number of rejected SIP INVITE requests", "dir", "to", "reason")
        self.calls_terminated = counter(
            "calls_terminated",
            "Number of calls terminated by SIP bridge, labeled with result classification "
            "(success | server_error | client_error)",
            "dir", "to", "result", "reason",
        )  # fmt: skip
        self.packets_rtp = counter("packets_rtp", "Number of RTP packets sent or received by SIP bridge",
                                   "dir", "to", "op", "payload")  # fmt: skip
        self.sdp_parsed = counter(
            "sdp_parsed_total", "Number of SDP bodies parsed successfully during SDP negotiation", "dir", "provider"
        )
        self.codec_offered = counter(
            "codec_offered_total",
            "Number of SDP bodies that advertised a given audio codec",
            "dir",
            "provider",
            "codec",
        )
        self.transfers_total = counter("transfers_total", "Total number of SIP transfer attempts", "dir")
        self.transfers_succeeded = counter(
            "transfers_succeeded_total", "Total number of successful SIP transfers", "dir"
        )
        self.transfers_failed = counter(
            "transfers_failed_total", "Total number of failed SIP transfers", "dir", "reason"
        )
        self.counters = [
            self.invite_requests_raw, self.invite_requests, self.invite_accepted, self.invite_error,
            self.calls_terminated, self.packets_rtp, self.sdp_parsed, self.codec_offered, self.transfers_total,
            self.transfers_succeeded, self.transfers_failed,
        ]  # fmt: skip

        def gauge(name: str, documentation: str, *labels: str, subsystem: str = "sip") -> Gauge:
            return Gauge(f"livekit_{subsystem}_{name}", documentation, ("node_id", *labels), registry=self.registry)

        def histogram(name: str, documentation: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(
                f"livekit_sip_{name}", documentation, ("node_id", *labels), buckets=buckets, registry=self.registry
            )

        self.calls_active = gauge("calls_active", "Number of currently active SIP calls", "dir", "to")
        self.transfers_active = gauge("transfers_active", "Number of currently active SIP transfers", "dir")
        self.available = gauge("available", "Whether node can accept new requests").labels(n)
        self.cpu_load = gauge("cpu_load", "Share of the machine's CPU in use", "node_type", subsystem="node").labels(
            n, "SIP"
        )
        self.dur_session = histogram("dur_session_sec", "SIP session duration (from INVITE to closed)", LONG_BUCKETS,
                                     "dir")  # fmt: skip
        self.dur_call = histogram("dur_call_sec", "SIP call duration (from successful pin to closed)", LONG_BUCKETS,
                                  "dir")  # fmt: skip
        self.dur_check = histogram(
            "dur_check_sec", "SIP call check duration (from INVITE to an initial dispatch response)", OP_BUCKETS, "dir"
        )
        self.dur_join = histogram(
            "dur_join_sec", "SIP room join duration (from INVITE to mixed room audio)", OP_BUCKETS, "dir"
        )
        self.stage_dur = histogram(
            "stage_dur_sec", "SIP processing stage durations (depends on 'stage' label)", OP_BUCKETS, "dir", "stage"
        )
        self.sdp_size = histogram("sdp_size_bytes", "SDP size in bytes", SIZE_BUCKETS, "type")
        self._live: set[CallStats] = set()

    def watch(self, available: Callable[[], bool], cpu_load: Callable[[], float]) -> None:
        """Read the node's availability (its health) and CPU load whenever metrics are scraped."""
        self.available.set_function(lambda: 1.0 if available() else 0.0)
        self.cpu_load.set_function(cpu_load)

    def call(self, direction: str, to_host: str) -> CallStats:
        """The stats of a new call; ``direction`` "in" or "out", ``to_host`` the host its To header names."""
        return CallStats(self, direction, to_host or "unknown")

    def transfer_started(self, direction: str) -> None:
        self.transfers_total.inc(self.node_id, direction)
        self.transfers_active.labels(self.node_id, direction).inc()

    def transfer_ended(self, direction: str, failure: str | None) -> None:
        """A transfer's outcome: ``failure`` None when it succeeded, else why (``busy``, ``timeout``...)."""
        self.transfers_active.labels(self.node_id, direction).dec()
        if failure is None:
            self.transfers_succeeded.inc(self.node_id, direction)
        else:
            self.transfers_failed.inc(self.node_id, direction, failure)

    def exposition(self) -> bytes:
        live: dict[tuple[str, ...], float] = {}
        for call in self._live:
            for key, count in call.packet_labels().items():
                live[key] = live.get(key, 0.0) + count
        counters = "".join(c.render(live if c is self.packets_rtp else None) for c in self.counters)
        return counters.encode() + generate_latest(self.registry)


class CallStats:
    """One call's share of the metrics: each method may be called at most once in effect, as the Go service
    guards its own (a call starts, ends and terminates once)."""

    def __init__(self, stats: Stats, direction: str, to_host: str) -> None:
        self._stats = stats
        self.direction = direction
        self.to_host = to_host
        self.provider = UNKNOWN_PROVIDER
        self._invited_at = time.monotonic()
        self._answered_at: float | None = None
        self._started = False
        self._terminated = False
        self._ended = False
        self._packets: Callable[[], PacketCounts] | None = None

    def _dir(self) -> tuple[str, str]:
        return self._stats.node_id, self.direction

    def _dir_to(self) -> tuple[str, str, str]:
        return self._stats.node_id, self.direction, self.to_host

    def invite_received(self) -> None:
        """An INVITE reached the call flow (inbound): raw and valid at once, the stack having parsed it."""
        self._stats.invite_requests_raw.inc(self._stats.node_id)
        self._stats.invite_requests.inc(*self._dir())

    def invite_sent(self) -> None:
        self._stats.invite_requests.inc(*self._dir())

    def checked(self) -> None:
        """The dispatch decision is in (inbound: trunk, rule, auth)."""
        seconds = time.monotonic() - self._invited_at
        self._stats.dur_check.labels(*self._dir()).observe(seconds)
        self._stats.stage_dur.labels(*self._dir(), "auth-check").observe(seconds)

    def accepted(self) -> None:
        self._stats.invite_accepted.inc(*self._dir_to())

    def refused(self, termination: Termination) -> None:
        """An INVITE refused before the call began (no trunk, no rule, unauthorized...), as the Go service counts
        it: an invite error and a termination, both with ``to`` "unknown"."""
        node, direction = self._dir()
        self._stats.invite_error.inc(node, direction, "unknown", termination.reason)
        self._stats.calls_terminated.inc(node, direction, "unknown", termination.result, termination.reason)
        self._terminated = True

    def invite_failed(self, reason: str) -> None:
        """Our INVITE was refused (outbound); the termination is counted by `ended`."""
        self._stats.invite_error.inc(*self._dir_to(), reason)

    def joined(self) -> None:
        seconds = time.monotonic() - self._invited_at
        self._stats.dur_join.labels(*self._dir()).observe(seconds)
        self._stats.stage_dur.labels(*self._dir(), "invite-to-dispatch").observe(seconds)

    def sdp(self, offer: bytes | None, answer: bytes | None, offered_codecs: Iterable[str]) -> None:
        """The peer's SDP was parsed: its size, and the codecs it offered."""
        node, direction = self._dir()
        for kind, body in (("offer", offer), ("answer", answer)):
            if body:
                self._stats.sdp_size.labels(node, kind).observe(len(body))
        self._stats.sdp_parsed.inc(node, direction, self.provider)
        for codec in offered_codecs:
            self._stats.codec_offered.inc(node, direction, self.provider, codec)

    def started(self, packets: Callable[[], PacketCounts] | None = None) -> None:
        """The call is up (active calls count it); ``packets`` reads its RTP packet counts so far."""
        if self._started:
            return
        self._started = True
        self._answered_at = time.monotonic()
        self._packets = packets
        self._stats.calls_active.labels(*self._dir_to()).inc()
        self._stats._live.add(self)

    def packet_labels(self) -> dict[tuple[str, ...], float]:
        node, direction, to = self._dir_to()
        counts = self._packets() if self._packets is not None else {}
        return {(node, direction, to, op, payload): float(n) for (op, payload), n in counts.items()}

    def ended(self, termination: Termination) -> None:
        """The call is over: how it ended, its durations, its packets folded into the counters."""
        if self._ended:
            return
        self._ended = True
        stats = self._stats
        now = time.monotonic()
        if self._started:
            self._started = False
            stats.calls_active.labels(*self._dir_to()).dec()
            stats._live.discard(self)
            for key, count in self.packet_labels().items():
                stats.packets_rtp.inc(*key, amount=count)
            if self._answered_at is not None:
                stats.dur_call.labels(*self._dir()).observe(now - self._answered_at)
                stats.stage_dur.labels(*self._dir(), "call").observe(now - self._answered_at)
        stats.dur_session.labels(*self._dir()).observe(now - self._invited_at)
        stats.stage_dur.labels(*self._dir(), "session").observe(now - self._invited_at)
        if not self._terminated:
            self._terminated = True
            stats.calls_terminated.inc(*self._dir_to(), termination.result, termination.reason)
