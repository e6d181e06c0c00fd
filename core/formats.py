"""How figures, dates and codes read for people: pages, the admin, e-mails and CSV files.

Pure functions of their value; dates and times follow the formats in config/formats/en and the
site's time zone (TIME_ZONE).
Templates reach them through the `hpcgate` template library; Python code calls them directly.
Each returns plain text, so the same call serves a page, a mail and a spreadsheet cell.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from django.utils import timezone
from django.utils.formats import date_format

MISSING = "—"

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")

# The classification codes of systems.estimates, in words (Commission guidelines C(2025) 5045 and
# AI Act art. 51).
CLASSIFICATIONS = {
    "below_gpai": "below the GPAI indication",
    "gpai": "GPAI",
    "systemic_risk": "GPAI with systemic risk",
}

# Compute levels of compliance.thresholds; allocation levels are "allocation_<percent>".
ALERT_LEVELS = {
    "gpai_warning": "approaching the GPAI indication",
    "gpai": "GPAI indication reached",
    "systemic_risk_warning": "approaching the systemic-risk threshold",
    "systemic_risk": "systemic-risk threshold reached",
    "footprint_gpus": "GPUs held on several systems at once",
    "footprint_memory": "accelerator memory held on several systems at once",
    "job_memory": "one job's accelerator memory",
    "plan_overrun": "usage past the declared plan",
    "model_above_plan": "model compute above its largest declaration",
}

# Filled in by the organisations app from its country table (ISO 3166-1 alpha-2 -> name).
COUNTRY_NAMES: dict[str, str] = {}


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def power_of_ten(exponent: int) -> str:
    """10²¹ for 21."""
    return "10" + str(int(exponent)).translate(_SUPERSCRIPT)


def flop(value) -> str:
    """7.7616e21 as "7.8 × 10²¹": two significant figures, as the Commission guidelines report
    compute."""
    if _missing(value):
        return MISSING
    value = float(value)
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa} × {power_of_ten(int(exponent))}"


def number(value, digits: int = 0) -> str:
    """1234567.8 as "1,234,568" (or with `digits` decimals)."""
    if _missing(value):
        return MISSING
    return f"{float(value):,.{int(digits)}f}"


def whole(value) -> str:
    """A count or a grant: 120000 as "120,000"; 1.5e9 as "1,500,000,000"."""
    if _missing(value):
        return MISSING
    return f"{round(float(value)):,}"


def hours_from_seconds(seconds, digits: int = 1) -> str:
    """GPU-seconds as GPU-hours: 5400 as "1.5"."""
    return MISSING if _missing(seconds) else number(float(seconds) / 3600, digits)


def kwh_from_joules(joules, digits: int = 1) -> str:
    """Joules as kWh: 5.4e6 as "1.5"."""
    return MISSING if _missing(joules) else number(float(joules) / 3.6e6, digits)


def percent(share, digits: int = 0) -> str:
    """A share (0.81) as "81 %"."""
    if _missing(share):
        return MISSING
    return f"{float(share) * 100:.{int(digits)}f} %"


def classification(code) -> str:
    """Where compute sits against the thresholds, in words."""
    if _missing(code):
        return MISSING
    return CLASSIFICATIONS.get(code, str(code).replace("_", " "))


def alert_level(code) -> str:
    """An alert level in words: "75 % of the grant used", "GPAI indication reached"."""
    if _missing(code):
        return MISSING
    if code.startswith("allocation_"):
        return f"{code.removeprefix('allocation_')} % of the grant used"
    return ALERT_LEVELS.get(code, code.replace("_", " "))


def day(value) -> str:
    """A date (or the site-local date of a time) as "30 Nov 2026"."""
    if _missing(value):
        return MISSING
    if isinstance(value, str):
        value = _parse(value)
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return date_format(value, "DATE_FORMAT")


def moment(value) -> str:
    """A time in the site's time zone as "30 Nov 2026, 07:20 UTC"."""
    if _missing(value):
        return MISSING
    if isinstance(value, str):
        value = _parse(value)
    if not isinstance(value, datetime):
        return day(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def _parse(text: str) -> date | datetime:
    """ISO text from a JSON snapshot: a date, or a time."""
    return datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)


def country(code) -> str:
    """FI as "Finland"; an unknown code stays as it is."""
    if _missing(code):
        return MISSING
    return COUNTRY_NAMES.get(str(code).upper(), str(code))


def yes_no(value) -> str:
    if value is None:
        return MISSING
    return "Yes" if value else "No"
