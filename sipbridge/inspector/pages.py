"""The inspector's HTML: the calls list, a call's page, and the sign-in form. Rendered on the server, with no
script: links and ``:target`` highlight the message an arrow points to, and the calls list refreshes itself.
Everything that came from the wire or from a caller is escaped.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import quote

from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.ladder import anchors, ladder_svg
from sipbridge.inspector.plots import Chart, Series, chart_svg
from sipbridge.inspector.trace import CallTrace
from sipbridge.inspector.views import address, ladder_messages, registration_state, summary

REFRESH_SECONDS = 5
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { text-align: left; padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f3f3f3; }
tr.bad td.mos, td.fail { color: #b00; font-weight: bold; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
details:target pre, details:target summary { background: #fff6d0; border-color: #e0b000; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { color: #666; } dd { margin: 0; }
.muted { color: #777; } svg.ladder a:hover text { text-decoration: underline; }
nav a { margin-right: 1em; }
"""


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _when(unix: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix)) if unix else ""


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _mos(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else ""


def _link(trace_id: str, text: str) -> str:
    return f'<a href="/calls/{quote(trace_id, safe="")}">{escape(text) or "(call)"}</a>'


def index_page(book: TraceBook, now: float) -> str:
    live = [summary(t, now) for t in book.active()]
    ended = [summary(t, now) for t in book.ended()]
    head_live = "".join(
        f"<th>{h}</th>"
        for h in ("started", "direction", "from → to", "trunk", "rule", "room", "participant", "status", "codec",
                  "duration", "MOS")
    )  # fmt: skip
    rows_live = "".join(
        f'<tr class="{"bad" if (c["mos"] or 5) < 3.5 else ""}"><td>{_link(c["id"], _when(c["started_at"]))}</td>'
        f"<td>{c['direction']}</td><td>{escape(c['from'])} → {escape(c['to'])}</td><td>{escape(c['trunk_id'])}</td>"
        f"<td>{escape(c['rule_id'])}</td><td>{escape(c['room'])}</td><td>{escape(c['participant'])}</td>"
        f"<td>{escape(c['status'] or _sip_state(c))}</td><td>{escape(c['codec'])}</td>"
        f'<td>{_duration(c["duration"])}</td><td class="mos">{_mos(c["mos"])}</td></tr>'
        for c in live
    )
    head_ended = "".join(
        f"<th>{h}</th>"
        for h in ("ended", "direction", "from → to", "trunk", "room", "participant", "duration", "SIP status",
                  "ending", "MOS")
    )  # fmt: skip
    rows_ended = "".join(
        f'<tr class="{"bad" if (c["mos"] or 5) < 3.5 else ""}"><td>{_link(c["id"], _when(c["ended_at"]))}</td>'
        f"<td>{c['direction']}</td><td>{escape(c['from'])} → {escape(c['to'])}</td><td>{escape(c['trunk_id'])}</td>"
        f"<td>{escape(c['room'])}</td><td>{escape(c['participant'])}</td><td>{_duration(c['duration'])}</td>"
        f'<td class="{"fail" if (c["sip_status"] or 0) >= 300 else ""}">{c["sip_status"] or "none"}</td>'
        f'<td>{escape(c["ending"])}</td><td class="mos">{_mos(c["mos"])}</td></tr>'
        for c in ended
    )
    body = (
        "<h1>sipbridge call inspector</h1>"
        f'<nav><a href="/api/calls">JSON</a><span class="muted">refreshes every {REFRESH_SECONDS} s · '
        f"{len(book)} calls held in {_size(book.size)}</span></nav>"
        f'<h2>Live calls ({len(live)})</h2><table id="live"><tr>{head_live}</tr>{rows_live}</table>'
        f'<h2>Ended calls ({len(ended)})</h2><table id="ended"><tr>{head_ended}</tr>{rows_ended}</table>'
        + _registrations_table(book, now)
    )
    return _page("sipbridge inspector", body, refresh=True)


def _registrations_table(book: TraceBook, now: float) -> str:
    registrations = book.registrations()
    if not registrations:
        return ""
    rows = "".join(
        f"<tr><td>{_link(r.id, r.summary.to_number)}</td><td>{escape(address(r.messages()[-1].peer))}</td>"
        f"<td>{escape(registration_state(r))}</td><td>{_when(r.last_at)}</td><td>{r.count}</td></tr>"
        for r in registrations
    )
    head = "".join(f"<th>{h}</th>" for h in ("address of record", "registrar", "state", "last exchange", "messages"))
    return f'<h2>Registrations ({len(registrations)})</h2><table id="registrations"><tr>{head}</tr>{rows}</table>'


def _sip_state(call: dict[str, Any]) -> str:
    """A call no flow has described yet: what its INVITE got so far."""
    return f"SIP {call['sip_status']}" if call["sip_status"] else "setting up"


def call_page(book: TraceBook, trace: CallTrace, now: float) -> str:
    c = summary(trace, now)
    messages = ladder_messages(book, trace)
    gap_after = messages[trace.max_messages // 2 - 1].index if trace.omitted and not trace.legs else None
    facts = [
        ("LiveKit call ID", c["lk_call_id"]),
        ("SIP Call-ID", c["call_id"]),
        ("direction", c["direction"]),
        ("from → to", f"{c['from']} → {c['to']}"),
        ("trunk", c["trunk_id"]),
        ("dispatch rule", c["rule_id"]),
        ("room", c["room"]),
        ("participant", c["participant"]),
        ("status", c["status"]),
        ("codec", c["codec"]),
        ("started", _when(c["started_at"])),
        ("setup (to ringing or answer)", f"{c['setup_seconds']:.3f} s" if c["setup_seconds"] is not None else ""),
        ("duration", _duration(c["duration"])),
        ("SIP status", str(c["sip_status"] or "")),
        ("ending", c["ending"]),
        ("MOS", _mos(c["mos"])),
    ]
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts if v)
    legs = "".join(f"<li>{_link(leg, 'linked call ' + leg)} (transfer)</li>" for leg in c["legs"])
    texts = "".join(
        f'<details id="{anchor}"><summary>#{m.index} {escape(m.facts.label)} · '
        f"{'sent to' if m.outgoing else 'received from'} {escape(address(m.peer))} over {escape(m.transport)} · "
        f"{_when(m.at)}.{int(m.at * 1000) % 1000:03d}</summary><pre>{escape(m.data.decode('utf-8', 'replace'))}"
        "</pre></details>"
        for m, anchor in zip(messages, anchors(messages), strict=True)
    )
    key = quote(trace.id, safe="")
    body = (
        f'<nav><a href="/">← all calls</a><a href="/calls/{key}/pcap">download pcap</a>'
        f'<a href="/api/calls/{key}">JSON</a></nav>'
        f"<h1>Call {escape(c['from'])} → {escape(c['to'])}</h1><dl>{details}</dl>"
        + (f"<ul>{legs}</ul>" if legs else "")
        + f"<h2>SIP ladder ({c['messages_total']} messages"
        + (f", {c['messages_omitted']} not kept" if c["messages_omitted"] else "")
        + f")</h2>{ladder_svg(messages, gap_after, trace.omitted)}"
        + f"<h2>Media quality</h2>{quality_charts(trace)}"
        + f"<h2>Messages</h2>{texts}"
    )
    return _page(f"call {c['lk_call_id'] or c['call_id']}", body)


def quality_charts(trace: CallTrace) -> str:
    rows = list(trace.quality.rows())
    if not rows:
        return '<p class="muted">No media yet.</p>'

    def series(column: str, name: str, colour: str) -> Series:
        return Series(name, [(r["at"] or 0.0, v) for r in rows if (v := r[column]) is not None], colour)

    received, sent = "#1f5fbf", "#c0392b"
    charts = [
        Chart("MOS (E-model)", "1-4.5", [series("rx_mos", "from caller", received),
                                          series("tx_mos", "to caller", sent)], floor=1.0, ceiling=4.5),
        Chart("Loss per interval", "%", [series("rx_interval_loss_pct", "from caller", received),
                                          series("tx_interval_loss_pct", "to caller", sent)], least_top=5.0),
        Chart("Jitter", "ms", [series("rx_jitter_ms", "from caller", received),
                               series("tx_jitter_ms", "to caller", sent)], least_top=10.0),
    ]  # fmt: skip
    if any(r["rtt_ms"] is not None for r in rows):
        charts.append(Chart("RTCP round trip", "ms", [series("rtt_ms", "round trip", "#555")], least_top=50.0))
    last = rows[-1]
    figures = (
        f"<p>From the caller: {int(last['rx_packets'] or 0)} packets, {int(last['rx_lost'] or 0)} lost "
        f"({last['rx_loss_pct'] or 0:.2f} %), {int(last['rx_late'] or 0)} late, "
        f"{int(last['rx_discarded'] or 0)} discarded by the jitter buffer, {last['rx_concealed_ms'] or 0:.0f} ms "
        "concealed.</p>"
    )
    return figures + "".join(chart_svg(c) for c in charts)


def login_page(error: str = "", next_path: str = "/") -> str:
    message = f'<p class="fail">{escape(error)}</p>' if error else ""
    body = (
        "<h1>sipbridge call inspector</h1>"
        "<p>Sign in with a LiveKit access token that has the SIP <code>admin</code> grant, e.g. "
        "<code>lk token create --sip-admin ...</code>, or send it as <code>Authorization: Bearer</code>.</p>"
        f'{message}<form method="post" action="/login"><input type="hidden" name="next" value="{escape(next_path)}">'
        '<textarea name="token" rows="5" cols="80" placeholder="token" required></textarea><br>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("sign in: sipbridge inspector", body)
