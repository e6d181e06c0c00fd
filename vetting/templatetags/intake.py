from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def flop(value) -> str:
    """1.1e23 as 1.1 × 10²³ (two significant figures, as the Commission guidelines report)."""
    if value is None or value == "":
        return "—"
    value = float(value)
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.1e}".split("e")
    return format_html("{} × 10<sup>{}</sup>", mantissa, int(exponent))


@register.filter
def number(value, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):,.{digits}f}"


@register.filter
def field(form, name: str):
    return form[name]


@register.filter
def percent(share) -> str:
    if share is None or share == "":
        return "—"
    return f"{float(share) * 100:.0f} %"
