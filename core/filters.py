"""Query filters whose schema says exactly what they take, so that the API refuses (400) what
the schema does not allow and takes everything it does."""

from datetime import UTC

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

# Ids are database bigints; a larger number would overflow the query.
ID_MAX = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=ID_MAX, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": ID_MAX})
class IdFilter(django_filters.Filter):
    """An object's id. An id that does not exist, or that the caller cannot see, gives an empty
    list exactly like an id that nobody can see: the filter reveals nothing."""

    field_class = IdField


class _StrictBooleanField(forms.TypedChoiceField):
    def __init__(self, **kwargs):
        kwargs.pop("empty_value", None)
        super().__init__(
            choices=[("true", "true"), ("false", "false")],
            coerce=lambda value: value == "true",
            empty_value=None,
            **kwargs,
        )


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(django_filters.Filter):
    """`true` or `false`; anything else is refused instead of ignored."""

    field_class = _StrictBooleanField

    def filter(self, qs, value):
        if value is None:
            return qs
        return super().filter(qs, value)


class _InstantField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, taken as the instant it names: converted to UTC, so an offset the
    database cannot store (PostgreSQL's reach ±15:59, where ISO allows ±23:59) never reaches a
    query, and an instant before year 1 or after 9999 once in UTC is refused."""

    default_error_messages = {
        "out_of_range": "This date and time lies outside the years 1 to 9999 once in UTC.",
    }

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from exc


class InstantFilter(django_filters.IsoDateTimeFilter):
    """`raised_after=2026-11-28T12:00:00+01:00`: a date-time with its zone (the server's zone
    when none is given), compared as the instant it names."""

    field_class = _InstantField
