"""The usage charts' geometry: labels inside the chart, readable log ticks, projections."""

from datetime import date

from systems.estimates import use_projection
from usage.charts import HEIGHT, WIDTH, compute_chart, hours_chart
from usage.selectors import SeriesPoint

FIRST, TODAY, LAST = date(2026, 3, 1), date(2026, 3, 10), date(2026, 3, 30)
SERIES = [
    SeriesPoint(date(2026, 3, 5), 3600 * 400, 4e20, 1e21),
    SeriesPoint(date(2026, 3, 10), 3600 * 1000, 1e21, 2.5e21),
]
PROJECTION = use_projection(used=1000, granted=1000, start=FIRST, end=LAST, today=TODAY)


def test_the_grant_label_stays_inside_the_chart_when_the_grant_is_the_top():
    chart = hours_chart(
        series=SERIES, granted=1000, first=FIRST, last=LAST, today=TODAY, projection=None
    )
    (grant,) = chart.levels
    assert grant["label"] == "grant 1,000 GPU-hours"
    assert 0 < grant["label_y"] <= HEIGHT
    assert grant["y"] < 16 and grant["label_y"] > grant["y"]  # below a line at the top


def test_both_charts_show_the_projection_to_the_end_date():
    hours = hours_chart(
        series=SERIES, granted=5000, first=FIRST, last=LAST, today=TODAY, projection=PROJECTION
    )
    compute = compute_chart(
        series=SERIES,
        first=FIRST,
        last=LAST,
        today=TODAY,
        projection=PROJECTION,
        gpai_flop=1e23,
        systemic_risk_flop=1e25,
    )
    for chart in (hours, compute):
        start, end = chart.projection.split()
        assert float(end.split(",")[0]) == WIDTH
        assert float(start.split(",")[0]) < WIDTH
    # 1,000 GPU-hours in 10 days carried on for 20 more: 3,000 at the end, below the 5,000
    assert [t.label for t in hours.y_ticks] == ["0", "2,625", "5,250"]
    assert "today" in [t.label for t in hours.x_ticks]


def test_the_log_axis_has_a_tick_label_per_power_of_ten():
    chart = compute_chart(
        series=SERIES,
        first=FIRST,
        last=LAST,
        today=TODAY,
        projection=None,
        gpai_flop=1e23,
        systemic_risk_flop=1e25,
    )
    labels = [tick.label for tick in chart.y_ticks]
    assert labels[0] == "10¹⁵" and "10²³" in labels and "10²⁵" in labels
    assert len(labels) == 12  # 10¹⁵ to 10²⁶
    ys = [tick.at for tick in chart.y_ticks]
    assert ys == sorted(ys, reverse=True) and ys[0] == HEIGHT
    assert chart.projection == ""
    assert [level["label"] for level in chart.levels] == [
        "GPAI 1.0 × 10²³ FLOP",
        "systemic risk 1.0 × 10²⁵ FLOP",
    ]
