"""Traces as plain data: what the JSON API returns and the HTML pages show.

A call's messages are shown with those of its linked legs (a transfer's new call), in time order.
"""

from __future__ import annotations

import statistics
from typing import Any

from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.trace import COLUMNS, CallTrace, TracedMessage


def address(host_port: tuple[str, int]) -> str:
    host, port = host_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def call_mos(trace: CallTrace) -> float | None:
    """The caller's audio as received: the last 5 s while the call lasts, the mean over the call once ended."""
    scores = [row["rx_mos"] for row in trace.quality.rows() if row["rx_mos"] is not None]
    if not scores:
        return None
    return round(statistics.fmean(scores), 2) if trace.ended else scores[-1]


def registration_state(trace: CallTrace) -> str:
    if not trace.sip_status:
        return "registering"
    return "registered" if 200 <= trace.sip_status < 300 else f"refused ({trace.sip_status})"


def summary(trace: CallTrace, now: float) -> dict[str, Any]:
    s = trace.summary
    last = trace.quality.last()
    return {
        "id": trace.id,
        "kind": "registration" if trace.registration else "call",
        "call_id": trace.call_id,
        "lk_call_id": s.lk_call_id,
        "direction": s.direction or "inbound",
        "trunk_id": s.trunk_id,
        "rule_id": s.rule_id,
        "room": s.room,
        "participant": s.participant,
        "from": s.from_number,
        "to": s.to_number,
        "status": registration_state(trace) if trace.registration else s.status,
        "codec": s.codec,
        "ended": trace.ended,
        "ending": s.ending,
        "sip_status": trace.sip_status or None,
        "started_at": trace.started_at,
        "answered_at": trace.answered_at,
        "ended_at": trace.ended_at,
        "last_message_at": trace.last_at,
        "duration": round(trace.duration(now), 3),
        "setup_seconds": round(trace.setup_at - trace.started_at, 3) if trace.setup_at is not None else None,
        "mos": call_mos(trace),
        "loss_pct": last["rx_loss_pct"] if last else None,
        "jitter_ms": last["rx_jitter_ms"] if last else None,
        "messages_total": trace.count,
        "messages_omitted": trace.omitted,
        "legs": list(trace.legs),
    }


def ladder_messages(book: TraceBook, trace: CallTrace) -> list[TracedMessage]:
    """The call's messages and those of its linked legs still held, in time order."""
    messages = trace.messages()
    for leg_id in trace.legs:
        leg = book.get(leg_id)
        if leg is not None:
            messages += leg.messages()
    return sorted(messages, key=lambda m: m.at) if trace.legs else messages


def message(m: TracedMessage) -> dict[str, Any]:
    return {
        "index": m.index,
        "at": m.at,
        "direction": "out" if m.outgoing else "in",
        "transport": m.transport,
        "from": address(m.source),
        "to": address(m.destination),
        "call_id": m.facts.call_id,
        "label": m.facts.label,
        "cseq": f"{m.facts.cseq} {m.facts.method}",
        "text": m.data.decode("utf-8", "replace"),
    }


def detail(book: TraceBook, trace: CallTrace, now: float) -> dict[str, Any]:
    return {
        **summary(trace, now),
        "quality": {"columns": list(COLUMNS), "stride": trace.quality.stride, "samples": list(trace.quality.rows())},
        "messages": [message(m) for m in ladder_messages(book, trace)],
    }
