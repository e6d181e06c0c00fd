"""The `hpcgate` template library: core.formats as filters, for pages, the admin and e-mails."""

from django import template

from core import formats

register = template.Library()

for _name in (
    "flop",
    "number",
    "whole",
    "percent",
    "hours_from_seconds",
    "kwh_from_joules",
    "classification",
    "alert_level",
    "day",
    "moment",
    "country",
    "yes_no",
    "power_of_ten",
):
    register.filter(_name, getattr(formats, _name))
