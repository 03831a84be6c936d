"""One metered feature's usage as a hand-written inline SVG bar chart (for report_html).

Drawn from one feature of the `usage show --json` dict (UsageReport.to_dict()), never re-queried.
Every figure a person reads (a bar's quantity, its % of the allowance, the axis ticks) is an exact
decimal string made here with Decimal; floats are used only for pixel geometry.

- One bar per period; each bar is a focusable group (tabindex, role="img", an aria-label with the
  exact figure, the period's dates and its % of the allowance) whose data-* attributes feed the
  tooltip script, and whose <title> is the tooltip without script.
- The allowance is a dashed horizontal line, on the same scale as the bars. When it is more than
  OFF_SCALE times the largest period, the bars would be slivers under it: the chart is scaled to the
  bars and a caption says where the allowance is instead (the largest period's share of it).
- The current usage period's reset dates (its start: the last reset; its end: the next one) are
  marked with vertical lines when they fall inside the range shown. Earlier resets are not drawn:
  the dict knows only the current period (an anchor or a limit may have been different before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

from tollgate.money import format_decimal

WIDTH, HEIGHT = 480, 236
LEFT, RIGHT, TOP, BOTTOM = 58, 8, 22, 34
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
OFF_SCALE = 4
"""The allowance line is drawn when it is at most this many times the largest period."""
LABEL_EM = 0.62
"""The width of a label's character in font sizes (for spacing the period labels under the bars)."""
LABEL_FONT = 19
"""The largest size of the labels (report_html's CSS on a phone, where the chart is scaled down)."""


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else moment.strftime("%Y-%m-%d %H:%M")


def percent_of(quantity: Decimal, limit: Decimal | None) -> str | None:
    """`quantity` as a % of `limit`, to one decimal (as usage.FeatureUsage.percent_used), or None."""
    if limit is None or limit == 0:
        return None
    return format_decimal(((quantity * 100) / limit).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


def nice_top(largest: Decimal) -> tuple[Decimal, Decimal]:
    """(top of the scale, tick step): four steps of 1, 2, 2.5 or 5 times a power of ten covering
    `largest` (a scale of 0..4 when there is nothing to show)."""
    if largest <= 0:
        return Decimal(4), Decimal(1)
    exponent = largest.adjusted()
    for power in (exponent - 1, exponent):
        for mantissa in ("1", "2", "2.5", "5"):
            step = Decimal(mantissa).scaleb(power)
            if step * 4 >= largest:
                return step * 4, step
    step = Decimal(1).scaleb(exponent + 1)
    return step * 4, step


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime
    end: datetime
    quantity: Decimal
    text: str  # the exact quantity as the dict has it

    @property
    def dates(self) -> str:
        last = self.end - timedelta(days=1)
        return _day(self.start) if last <= self.start else f"{_day(self.start)} to {_day(last)}"

    @property
    def title(self) -> str:
        """`2026-W40 (2026-09-28 to 2026-10-04)`; a day is its own label."""
        return self.label if self.dates == self.label else f"{self.label} ({self.dates})"


def periods(feature: dict, report: dict) -> list[Period]:
    """The feature's series with each period's end (the next period's start; the last ends at `to`)."""
    series = feature["series"]
    ends = [p["start"] for p in series[1:]] + [report["to"]]
    return [Period(p["period"], _moment(p["start"]), _moment(end), Decimal(p["quantity"]), p["quantity"])
            for p, end in zip(series, ends)]


def allowance_text(feature: dict) -> str:
    """`50000000 token / month (soft)`, `unlimited`, or none (nothing grants the feature)."""
    if feature["unlimited"]:
        return "unlimited"
    if feature["limit"] is None:
        return "none (no subscription grants it)"
    unit = f" {feature['unit']}" if feature["unit"] else ""
    per = "" if feature["reset"] in (None, "never") else f" / {feature['reset']}"
    return f"{feature['limit']}{unit}{per} ({'hard' if feature['hard'] else 'soft'})"


@dataclass(frozen=True)
class Chart:
    svg: str
    caption: str  # what the chart can't say by itself (the allowance off the scale, resets outside)
    rows: list[tuple[Period, str | None, str]]  # per period: (period, % of allowance, reset note)


def chart(feature: dict, report: dict) -> Chart:
    """The SVG bar chart of one feature of a `usage show --json` dict, with the table's rows."""
    shown = periods(feature, report)
    limit = Decimal(feature["limit"]) if feature["limit"] is not None else None
    unit = f" {feature['unit']}" if feature["unit"] else ""
    largest = max((p.quantity for p in shown), default=Decimal(0))
    # the allowance drawn as a line, when it fits the scale
    line = limit if limit is not None and limit > 0 and (largest <= 0 or limit <= largest * OFF_SCALE) else None
    top, step = nice_top(largest if line is None else max(largest, line))
    captions = []
    if limit is not None and limit > 0 and line is None:
        captions.append(f"The allowance, {allowance_text(feature)}, is above this scale: the largest "
                        f"{report['by']} is {percent_of(largest, limit)}% of it.")

    def y(value: Decimal) -> float:
        return TOP + PLOT_H - float(max(value, Decimal(0)) / top) * PLOT_H

    slot = PLOT_W / max(len(shown), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="group" '
             f'aria-label="{escape(feature["feature"])}: usage by {escape(report["by"])}">']
    ticks = int(top / step)
    for i in range(ticks + 1):
        value = step * i
        ty = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">'
                     f'{_short(value)}</text>')
    room = max(len(p.label) for p in shown) * LABEL_FONT * LABEL_EM + 12 if shown else PLOT_W
    every = max(1, -(-len(shown) // max(1, int(PLOT_W // room))))
    rows = []
    for i, period in enumerate(shown):
        x = LEFT + i * slot
        pct = percent_of(period.quantity, limit)
        of = f", {pct}% of the allowance" if pct is not None else ""
        label = f"{period.title}: {period.text}{unit}{of}"
        bar_y = y(period.quantity)
        height = TOP + PLOT_H - bar_y
        if period.quantity > 0 and height < 1.5:
            bar_y, height = TOP + PLOT_H - 1.5, 1.5  # a small period still shows
        gap = min(2.0, slot * 0.2)
        parts.append(
            f'<g class="bar" tabindex="0" role="img" aria-label="{escape(label)}" '
            f'data-figure="{escape(period.text + unit)}" data-dates="{escape(period.title)}" '
            f'data-share="{escape(f"{pct}% of the allowance" if pct is not None else "")}">'
            f'<title>{escape(label)}</title>'
            f'<rect class="hit" x="{x:.2f}" y="{TOP}" width="{slot:.2f}" height="{PLOT_H}"/>'
            f'<rect class="value" x="{x + gap / 2:.2f}" y="{bar_y:.2f}" width="{max(slot - gap, 0.5):.2f}" '
            f'height="{height:.2f}"/></g>')
        if i % every == 0:
            parts.append(f'<text class="tick" x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 20}" '
                         f'text-anchor="middle">{escape(period.label)}</text>')
        rows.append((period, pct, ""))
    if line is not None:
        ly = y(line)
        parts.append(f'<line class="allowance" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ly:.1f}" y2="{ly:.1f}"/>'
                     f'<text class="note" x="{WIDTH - RIGHT}" y="{ly - 5:.1f}" text-anchor="end">'
                     f'allowance {escape(feature["limit"] + unit)}</text>')
    marks, outside = _resets(feature, shown)
    for moment, name, index in marks:
        period = shown[index]
        share = (moment - period.start) / (period.end - period.start)
        mx = LEFT + (index + share) * slot
        parts.append(f'<line class="reset" x1="{mx:.1f}" x2="{mx:.1f}" y1="{TOP - 4}" y2="{TOP + PLOT_H}"/>'
                     f'<text class="note" x="{mx + 3:.1f}" y="{TOP - 8}">{name}</text>')
        rows[index] = (period, rows[index][1], f"{name} {_day(moment)}")
    captions.extend(outside)
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}"/>')
    parts.append("</svg>")
    return Chart("".join(parts), " ".join(captions), rows)


def _resets(feature: dict, shown: list[Period]) -> tuple[list[tuple[datetime, str, int]], list[str]]:
    """The current usage period's boundaries inside the range: (moment, name, index of the period
    holding it); and a sentence for each outside it."""
    if feature["reset"] in (None, "never") or not shown:
        return [], []
    marks, outside = [], []
    for key, name in (("period_start", "reset"), ("reset_at", "next reset")):
        if feature[key] is None:
            continue
        moment = _moment(feature[key])
        index = next((i for i, p in enumerate(shown) if p.start <= moment < p.end), None)
        if index is None:
            outside.append(f"{name.capitalize()}: {_day(moment)} (outside the range shown).")
        else:
            marks.append((moment, name, index))
    return marks, outside


def _short(value: Decimal) -> str:
    """An axis tick: exact, with k / M / G for round thousands (2500000 -> 2.5M)."""
    for size, suffix in ((Decimal(10) ** 9, "G"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if value >= size:
            return format_decimal(value / size) + suffix
    return format_decimal(value)
