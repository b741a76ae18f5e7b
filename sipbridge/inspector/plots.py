"""Quality over a call's time as small SVG line charts (MOS, loss per interval, jitter, round trip).

Server-side, no script: each chart is a polyline per direction over axes labelled with the time and value range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 170
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 24, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    series: Sequence[Series]
    floor: float = 0.0
    ceiling: float | None = None
    """Fixed top of the value axis (MOS: 4.5); None: the largest value, at least ``least_top``."""
    least_top: float = 1.0


def chart_svg(chart: Chart) -> str:
    points = [p for s in chart.series for p in s.points]
    t_max = max((t for t, _ in points), default=1.0) or 1.0
    top = chart.ceiling if chart.ceiling is not None else max([chart.least_top, *(v for _, v in points)])
    span = (top - chart.floor) or 1.0
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(t: float, v: float) -> str:
        x = PAD_LEFT + inner_w * t / t_max
        y = PAD_TOP + inner_h * (1 - (min(max(v, chart.floor), top) - chart.floor) / span)
        return f"{x:.1f},{y:.1f}"

    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<text x="{PAD_LEFT}" y="14" font-weight="bold">{escape(chart.title)} ({escape(chart.unit)})</text>',
        f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#bbb"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">{top:g}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + inner_h}" text-anchor="end">{chart.floor:g}</text>',
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}">0 s</text>',
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{t_max:.0f} s</text>',
    ]
    legend_x = WIDTH - PAD_RIGHT
    for s in reversed([s for s in chart.series if s.points]):
        out.append(f'<text x="{legend_x}" y="14" text-anchor="end" fill="{s.colour}">{escape(s.name)}</text>')
        legend_x -= 8 + 7 * len(s.name)
        if len(s.points) == 1:
            (t, v) = s.points[0]
            cx, cy = xy(t, v).split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{s.colour}"/>')
        else:
            path = " ".join(xy(t, v) for t, v in s.points)
            out.append(f'<polyline class="series" points="{path}" fill="none" stroke="{s.colour}" stroke-width="1.5"/>')
    out.append("</svg>")
    return "".join(out)
