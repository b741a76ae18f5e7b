"""The ladder diagram of a call as SVG: one column per party, one arrow per message, top to bottom in time.

Each arrow says the method or the status (and "SDP" when the message carries one) and links to the message's full
text on the same page (``#m<index>``); the bridge is one column whatever port it used. Arrows of a second leg (a
transfer's new call) are drawn in another colour. Everything from the wire is escaped.
"""

from __future__ import annotations

from html import escape

from sipbridge.inspector.trace import TracedMessage
from sipbridge.inspector.views import address

COLUMN_WIDTH = 230
ROW_HEIGHT = 30
TOP = 56
LEFT = 90
LEG_COLOURS = ("#1f5fbf", "#2e8b57", "#b8860b", "#8b3a8b")
OURS = "sipbridge"


def anchors(messages: list[TracedMessage]) -> list[str]:
    """The id of each message's text on the call page: ``m<index>``, ``m<leg>-<index>`` for later legs."""
    legs: dict[str, int] = {}
    ids = []
    for m in messages:
        leg = legs.setdefault(m.facts.call_id, len(legs))
        ids.append(f"m{m.index}" if leg == 0 else f"m{leg}-{m.index}")
    return ids


def parties(messages: list[TracedMessage]) -> list[str]:
    """Columns in order of first appearance (the caller of an inbound call first, the bridge first outbound)."""
    seen: dict[str, None] = {}
    for m in messages:
        for end, ours in ((m.source, m.outgoing), (m.destination, not m.outgoing)):
            seen.setdefault(OURS if ours else address(end), None)
    return list(seen)


def ladder_svg(messages: list[TracedMessage], omitted_after: int | None = None, omitted: int = 0) -> str:
    """``omitted_after``: the index of the last message before a gap of ``omitted`` messages not kept."""
    columns = parties(messages)
    x = {name: LEFT + COLUMN_WIDTH // 2 + i * COLUMN_WIDTH for i, name in enumerate(columns)}
    legs: dict[str, str] = {}
    rows = len(messages) + (1 if omitted else 0)
    width = LEFT + COLUMN_WIDTH * max(1, len(columns)) + 20
    height = TOP + ROW_HEIGHT * rows + 30
    start = messages[0].at if messages else 0.0
    out = [
        f'<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
    ]
    for name, cx in x.items():
        out.append(f'<text x="{cx}" y="20" text-anchor="middle" font-weight="bold">{escape(name)}</text>')
        out.append(f'<line x1="{cx}" y1="30" x2="{cx}" y2="{height - 10}" stroke="#999" stroke-dasharray="4 3"/>')
    y = TOP
    for m, anchor in zip(messages, anchors(messages), strict=True):
        colour = legs.setdefault(m.facts.call_id, LEG_COLOURS[len(legs) % len(LEG_COLOURS)])
        src = x[OURS if m.outgoing else address(m.source)]
        dst = x[address(m.destination) if m.outgoing else OURS]
        label = m.facts.label + (" (SDP)" if "sdp" in m.facts.content_type.lower() else "")
        middle = (src + dst) // 2
        out.append(
            f'<a href="#{anchor}"><g class="arrow" data-index="{m.index}">'
            f"<title>{escape(m.transport)} {escape(address(m.source))} → {escape(address(m.destination))}</title>"
            f'<text x="8" y="{y + 4}" fill="#666">+{m.at - start:.3f} s</text>'
            f'<line x1="{src}" y1="{y}" x2="{dst}" y2="{y}" stroke="{colour}" stroke-width="1.6" '
            'marker-end="url(#head)"/>'
            f'<text x="{middle}" y="{y - 5}" text-anchor="middle" fill="{colour}">{escape(label)}</text></g></a>'
        )
        y += ROW_HEIGHT
        if omitted and m.index == omitted_after:
            out.append(
                f'<text x="{width // 2}" y="{y}" text-anchor="middle" fill="#a00">'
                f"… {omitted} messages not kept …</text>"
            )
            y += ROW_HEIGHT
    out.append("</svg>")
    return "".join(out)
