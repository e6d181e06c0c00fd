"""The two usage charts as SVG geometry: pure functions of the daily series, the grant, the
thresholds and the projection, so the template only draws what is computed here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from core import formats
from systems.estimates import UseProjection
from usage.selectors import SeriesPoint

WIDTH, HEIGHT = 640, 240
LOG_FLOOR = 15  # 10^15 FLOP: the bottom of the compute axis


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    line: str  # polyline points of what happened
    projection: str  # polyline points from today to the end date, at the rate so far
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    levels: list[dict] = field(default_factory=list)  # horizontal lines: y, label, label_y, kind
    upper: str = ""  # compute only: the upper bound at utilisation 1
    width: int = WIDTH
    height: int = HEIGHT


class _Days:
    """Days to x: from the first day to the last, over the chart's width."""

    def __init__(self, first: date, last: date):
        self.first = first
        self.span = max((last - first).days, 1)

    def x(self, day: date) -> float:
        return (day - self.first).days / self.span * WIDTH


def _points(pairs) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)


def _level(y: float, label: str, kind: str) -> dict:
    # A label above its line, unless the line runs along the top: then below it.
    label_y = y + 14 if y < 16 else y - 5
    return {"y": round(y, 1), "label": label, "label_y": round(label_y, 1), "kind": kind}


def _date_ticks(days: _Days, first: date, last: date, today: date | None) -> list[Tick]:
    ticks = [Tick(0.0, formats.day(first)), Tick(float(WIDTH), formats.day(last))]
    if today and first < today < last:
        x = days.x(today)
        if 90 < x < WIDTH - 90:  # room beside the end labels
            ticks.insert(1, Tick(x, "today"))
    return ticks


def hours_chart(
    *,
    series: list[SeriesPoint],
    granted: float,
    first: date,
    last: date,
    today: date,
    projection: UseProjection | None,
) -> Chart:
    """Cumulative GPU-hours against the grant, and where they head by the end date."""
    days = _Days(first, last)
    at_end = projection.at_end if projection and projection.rate_per_day else 0.0
    top = max([granted, at_end, *(p.gpu_hours for p in series), 1.0]) * 1.05

    def y(hours: float) -> float:
        return HEIGHT - hours / top * HEIGHT

    line = _points([(days.x(first), y(0))] + [(days.x(p.day), y(p.gpu_hours)) for p in series])
    projected = ""
    if projection and projection.rate_per_day and today < last:
        projected = _points([(days.x(today), y(projection.used)), (WIDTH, y(at_end))])
    return Chart(
        line=line,
        projection=projected,
        y_ticks=[Tick(y(value), formats.whole(value)) for value in (0, top / 2, top)],
        x_ticks=_date_ticks(days, first, last, today),
        levels=[_level(y(granted), f"grant {formats.whole(granted)} GPU-hours", "grant")],
    )


def compute_chart(
    *,
    series: list[SeriesPoint],
    first: date,
    last: date,
    today: date,
    projection: UseProjection | None,
    gpai_flop: float,
    systemic_risk_flop: float,
) -> Chart:
    """Cumulative training compute (estimate and upper bound) on a log scale, against the GPAI
    and systemic-risk thresholds, with the estimate carried on to the end date."""
    days = _Days(first, last)
    ceiling = math.ceil(math.log10(systemic_risk_flop)) + 1
    decades = ceiling - LOG_FLOOR

    def y(flop: float) -> float:
        share = (math.log10(max(flop, 10**LOG_FLOOR)) - LOG_FLOOR) / decades
        return HEIGHT - min(max(share, 0.0), 1.0) * HEIGHT

    estimate = _points(
        [(days.x(first), y(0))] + [(days.x(p.day), y(p.flop_estimate)) for p in series]
    )
    upper = _points(
        [(days.x(first), y(0))] + [(days.x(p.day), y(p.flop_upper_bound)) for p in series]
    )
    projected = ""
    if series and projection and projection.rate_per_day and projection.used and today < last:
        now = series[-1].flop_estimate
        at_end = now * projection.at_end / projection.used
        projected = _points([(days.x(today), y(now)), (WIDTH, y(at_end))])
    return Chart(
        line=estimate,
        upper=upper,
        projection=projected,
        y_ticks=[
            Tick(y(10**exponent), formats.power_of_ten(exponent))
            for exponent in range(LOG_FLOOR, ceiling + 1)
        ],
        x_ticks=_date_ticks(days, first, last, today),
        levels=[
            _level(y(gpai_flop), f"GPAI {formats.flop(gpai_flop)} FLOP", "gpai"),
            _level(
                y(systemic_risk_flop),
                f"systemic risk {formats.flop(systemic_risk_flop)} FLOP",
                "systemic",
            ),
        ],
    )
