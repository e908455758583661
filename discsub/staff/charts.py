"""Small inline SVG charts for the dashboard: drawn on the server, no JavaScript.

Every chart has a text alternative (``aria-label`` and ``<title>``) and the
page shows the figures next to it, so nothing is only a picture."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

PALETTE = {"burned": "#9bb1ee", "checked": "#6f8fe3", "shipped": "#2f5bd3", "delivered": "#1f8a5b", "failed": "#c2410c"}


def columns(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, title: str, height: int = 120
) -> SafeString:
    """Grouped columns, one group per label (e.g. per day), one column per series."""
    groups = len(labels)
    per = max(len(series), 1)
    group_w, gap = 8 * per + 6, 6
    width = groups * (group_w + gap)
    top = max([1, *(v for _, values in series for v in values)])
    plot = height - 18
    parts = [
        format_html(
            '<svg class="chart" viewBox="0 0 {} {}" width="100%" height="{}" role="img" aria-label="{}">'
            "<title>{}</title>",
            width,
            height,
            height,
            title,
            title,
        ),
        format_html('<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#e3e6eb"/>', plot + 0.5, width, plot + 0.5),
    ]
    for g, label in enumerate(labels):
        x0 = g * (group_w + gap) + gap / 2
        for s, (name, values) in enumerate(series):
            value = values[g]
            h = round(plot * value / top, 1)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="7" height="{}" rx="1.5" fill="{}"><title>{}: {} {}</title></rect>',
                    x0 + 3 + s * 8,
                    plot - h,
                    max(h, 0.5 if value else 0),
                    PALETTE.get(name, "#2f5bd3"),
                    label,
                    value,
                    name,
                )
            )
        if g % 2 == 0 or groups <= 8:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="9" text-anchor="middle" fill="#5b6473">{}</text>',
                    x0 + group_w / 2,
                    height - 4,
                    label,
                )
            )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def meter(value: float, top: float, *, color: str = "#2f5bd3", label: str = "") -> SafeString:
    """A one-line horizontal bar (value out of top)."""
    share = 0 if top <= 0 else max(min(value / top, 1), 0)
    return format_html(
        '<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" width="100%" height="8" role="img" '
        'aria-label="{}">'
        '<rect width="100" height="8" rx="4" fill="#eef0f4"/><rect width="{}" height="8" rx="4" fill="{}"/></svg>',
        label or escape(f"{value} of {top}"),
        round(share * 100, 1),
        color,
    )


def legend(names: Sequence[str]) -> SafeString:
    return format_html_join(
        "", '<span class="key"><i style="background:{}"></i>{}</span>', [(PALETTE.get(n, "#2f5bd3"), n) for n in names]
    )
