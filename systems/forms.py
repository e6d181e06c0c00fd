"""The threshold policy form of the admin: FLOP, shares and alert levels as people type them."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from systems.models import ThresholdPolicy

_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def flop_parse(text: str) -> float:
    """ "1e23", "10^23", "1.5 × 10^23" or "1.5 × 10²³" as a number."""
    text = re.sub(r"10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: "10^" + m.group(1).translate(_DIGITS), text)
    cleaned = text.strip().replace(" ", "").replace(",", "")
    cleaned = cleaned.replace("×", "*").replace("x", "*").replace("**", "^")
    if "^" in cleaned:
        head, _, exponent = cleaned.partition("^")
        mantissa, _, base = head.rpartition("*")
        if base != "10":
            raise ValueError(text)
        return float(mantissa or 1) * 10 ** int(exponent)
    return float(cleaned)


class FlopField(forms.FloatField):
    """A compute figure in FLOP: shown as 1e23, typed as 1e23, 10^23 or 1 × 10²³."""

    widget = forms.TextInput

    def prepare_value(self, value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:.6g}".replace("e+", "e")
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return flop_parse(str(value))
        except (ValueError, OverflowError):
            raise ValidationError("Give a number of FLOP, e.g. 1e23 or 10^23.") from None


class ShareField(forms.FloatField):
    """A share typed and shown as a percentage: 40 is 0.4."""

    widget = forms.TextInput

    def prepare_value(self, value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value * 100:.4g}"
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip().removesuffix("%").strip()
        try:
            return float(text) / 100
        except ValueError:
            raise ValidationError("Give a percentage, e.g. 40.") from None

    def has_changed(self, initial, data) -> bool:
        # 1/3 shows as 33.33: unchanged text keeps the exact share.
        try:
            typed = self.to_python(data)
        except ValidationError:
            return True
        return self.prepare_value(initial) != self.prepare_value(typed)


class PercentagesField(forms.CharField):
    """Whole percentages, typed as "75, 90, 100"."""

    def __init__(self, *, encoder=None, decoder=None, **kwargs):
        # A JSON list in the model; the JSON field's options mean nothing to typed text.
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return []
        try:
            parts = [part for part in text.replace(";", ",").split(",") if part.strip()]
            return sorted({int(part) for part in parts})
        except ValueError:
            raise ValidationError(
                "Give whole percentages separated by commas, e.g. 75, 90, 100."
            ) from None

    def has_changed(self, initial, data) -> bool:
        try:
            return list(initial or []) != self.to_python(data)
        except ValidationError:
            return True


class ThresholdPolicyForm(forms.ModelForm):
    """One policy version. A version already in force is never edited (the admin shows it read
    only); a new one starts today or later."""

    SHARES = ("modification_share", "warning_share", "default_utilisation")

    made_from = forms.ModelChoiceField(
        queryset=ThresholdPolicy.objects.all(), required=False, widget=forms.HiddenInput
    )

    class Meta:
        model = ThresholdPolicy
        # Every level of the policy, those added later included: a new version copies them all.
        fields = "__all__"  # noqa: DJ007
        field_classes = {
            "gpai_flop": FlopField,
            "systemic_risk_flop": FlopField,
            "modification_share": ShareField,
            "warning_share": ShareField,
            "default_utilisation": ShareField,
            "allocation_alert_percentages": PercentagesField,
        }
        labels = {
            "modification_share": "Modification share (%)",
            "warning_share": "Warning share (%)",
            "default_utilisation": "Default utilisation (%)",
        }
        help_texts = {
            "gpai_flop": "E.g. 1e23 or 10^23.",
            "systemic_risk_flop": "E.g. 1e25 or 10^25.",
            "modification_share": "Of the original model's compute that makes a modifier a "
            "provider, e.g. 33.33 for one third.",
            "warning_share": "Of a threshold at which a warning is raised, e.g. 50.",
            "default_utilisation": "Of peak FLOP/s assumed when an estimate gives none, e.g. 40.",
            "allocation_alert_percentages": "Used shares of a grant that raise an alert, "
            "separated by commas, e.g. 75, 90, 100.",
        }

    def clean_effective_from(self):
        effective_from = self.cleaned_data["effective_from"]
        if effective_from and effective_from < timezone.localdate():
            raise ValidationError(
                "A new version takes effect today or later: what was in force in the past "
                "stays as it was."
            )
        return effective_from

    def clean(self):
        data = super().clean()
        # A share shown rounded (one third as 33.33) and left as it was keeps its exact value.
        before = data.get("made_from") or self.instance
        for name in self.SHARES:
            field, exact = self.fields.get(name), getattr(before, name, None)
            if field and exact is not None and name in data:
                same = field.prepare_value(exact) == field.prepare_value(data[name])
                data[name] = exact if same else data[name]
        return data
