"""core.formats: the one way figures, dates and codes read for people."""

from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template

from core import formats


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7.7616e21, "7.8 × 10²¹"),
        (1e23, "1.0 × 10²³"),
        (8272800000000001000000, "8.3 × 10²¹"),
        (3.8e25, "3.8 × 10²⁵"),
        (9.99e22, "1.0 × 10²³"),
        (5e-3, "5.0 × 10⁻³"),
        (0, "0"),
        (None, "—"),
        ("", "—"),
    ],
)
def test_flop_has_two_significant_figures_and_a_power_of_ten(value, text):
    assert formats.flop(value) == text


def test_numbers_have_thousands_separators():
    assert formats.number(1234567.891) == "1,234,568"
    assert formats.number(21493.54, 1) == "21,493.5"
    assert formats.whole(120000) == "120,000"
    assert formats.whole(3_000_000_000) == "3,000,000,000"
    assert formats.number(None) == "—"


def test_shares_read_as_percentages():
    assert formats.percent(0.81) == "81 %"
    assert formats.percent(1 / 3, 1) == "33.3 %"
    assert formats.percent(None) == "—"


def test_classifications_read_as_words():
    assert formats.classification("below_gpai") == "below the GPAI indication"
    assert formats.classification("gpai") == "GPAI"
    assert formats.classification("systemic_risk") == "GPAI with systemic risk"


def test_alert_levels_and_figures_read_as_words():
    assert formats.alert_level("allocation_75") == "75 % of the grant used"
    assert formats.alert_level("systemic_risk") == "systemic-risk threshold reached"


def test_dates_have_one_format():
    assert formats.day(date(2026, 11, 30)) == "30 Nov 2026"
    assert formats.day("2026-11-30") == "30 Nov 2026"
    assert formats.day(None) == "—"


def test_times_show_in_the_site_time_zone(settings):
    moment = datetime(2026, 11, 30, 5, 28, 24, 648762, tzinfo=UTC)
    assert formats.moment(moment) == "30 Nov 2026, 05:28 UTC"
    assert formats.moment("2026-11-30T05:28:24.648762+00:00") == "30 Nov 2026, 05:28 UTC"
    settings.TIME_ZONE = "Europe/Helsinki"
    assert formats.moment(moment) == "30 Nov 2026, 07:28 EET"
    assert formats.day(datetime(2026, 11, 30, 23, 0, tzinfo=UTC)) == "1 Dec 2026"


def test_countries_read_by_name():
    assert formats.country("FI") == "Finland"
    assert formats.country("es") == "Spain"
    assert formats.country("ZZ") == "ZZ"


def test_template_filters_are_the_same_functions():
    template = Template(
        "{% load hpcgate %}{{ f|flop }} | {{ h|whole }} | {{ s|percent }} | {{ c|classification }}"
        " | {{ d|day }} | {{ code|country }}"
    )
    text = template.render(
        Context(
            {"f": 7.76e21, "h": 20000, "s": 0.4, "c": "gpai", "d": date(2026, 1, 2), "code": "IT"}
        )
    )
    assert text == "7.8 × 10²¹ | 20,000 | 40 % | GPAI | 2 Jan 2026 | Italy"


def test_the_admin_and_pages_share_the_date_format():
    text = Template("{{ d|date }} {{ t }}").render(
        Context({"d": date(2026, 11, 30), "t": datetime(2026, 11, 30, 7, 20, tzinfo=UTC)})
    )
    assert text == "30 Nov 2026 30 Nov 2026, 07:20 UTC"
