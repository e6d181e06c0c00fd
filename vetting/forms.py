"""The application form: every field optional so a draft can be saved at any stage.

What a complete application needs is checked by `vetting.rules.validate_for_submit`, which the
API uses too; this form only reads what was typed.
"""

from collections.abc import Callable
from typing import Any

from django import forms

from core import numbers
from organisations.forms import PlainLabelsMixin
from systems.models import AccessMode, Partition
from vetting import rules
from vetting.models import DRAFT_FIELDS, Application

YES_NO = [("yes", "Yes"), ("no", "No")]
YES_NO_FIELDS = ("eu_market", "base_is_systemic_risk")
NUMBER_HINT = "You can write 7000000000, 7e9 or 7 billion."


class ReadableNumberField(forms.CharField):
    """A number typed the way people write it (see `core.numbers.parse_number`)."""

    def __init__(
        self, *, parse: Callable[[str], float] = numbers.parse_number, integer=False, **kw
    ):
        self.parse, self.integer = parse, integer
        kw.setdefault("required", False)
        kw.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        super().__init__(**kw)

    def to_python(self, value: Any) -> float | int | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            number = self.parse(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="unreadable") from exc
        if self.integer:
            if number != int(number):
                raise forms.ValidationError("Give a whole number.", code="unreadable")
            if number < 0:
                raise forms.ValidationError("The number cannot be negative.", code="unreadable")
            return int(number)
        return number


def _yes_no_field(label: str, help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label, choices=YES_NO, required=False, widget=forms.RadioSelect, help_text=help_text
    )


def _choice_field(label: str, choices, help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=[("", "Choose…"), *choices],
        required=False,
        help_text=help_text,
    )


def _date_field(label: str, help_text: str = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date such as 2026-03-01."},
    )


class CurrentModeChoiceField(forms.ModelChoiceField):
    """An access mode of the application's call; the mode the application has now, the usual
    answer on every save, is read without a query."""

    current: AccessMode | None = None

    def to_python(self, value: Any) -> AccessMode | None:
        if self.current is not None and str(value) == str(self.current.pk):
            return self.current
        return super().to_python(value)


class ApplicationForm(PlainLabelsMixin, forms.Form):
    access_mode = CurrentModeChoiceField(
        label="Access mode",
        queryset=AccessMode.objects.none(),
        empty_label=None,
        help_text="Changing it shows that mode's systems after you save.",
    )

    # Project
    title = forms.CharField(label="Project title", max_length=200, required=False)
    abstract = forms.CharField(
        label="Abstract",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What you will train and why it matters, in a few sentences.",
    )
    domain = _choice_field("Field", Application.Domain.choices)
    civilian_use_confirmed = forms.BooleanField(
        label="The project is exclusively civilian",
        required=False,
        help_text="EuroHPC computing time may only be used for civilian purposes.",
    )
    results_openness = _choice_field("Openness of the results", Application.Openness.choices)
    weights_openness = _choice_field(
        "Openness of the model weights", Application.WeightsOpenness.choices
    )
    eu_market = _yes_no_field("Will the model be placed on the EU market?")

    # Model plan
    model_name = forms.CharField(
        label="Model name",
        max_length=120,
        required=False,
        help_text="The name of the model lineage, e.g. aurora-legal-7b. Keep it the same in "
        "later applications for the same model.",
    )
    modality = _choice_field("Modality", Application.Modality.choices)
    training_kind = _choice_field("Kind of training", Application.TrainingKind.choices)
    parameters = ReadableNumberField(
        label="Parameters", integer=True, help_text=f"e.g. 7 billion. {NUMBER_HINT}"
    )
    training_tokens = ReadableNumberField(
        label="Training tokens",
        integer=True,
        help_text="Tokens the model sees in this run, e.g. 2 trillion (2e12).",
    )
    base_model = forms.CharField(
        label="Base model",
        max_length=200,
        required=False,
        help_text="Only for fine-tuning or continued pre-training: the model you start from.",
    )
    base_model_flop = ReadableNumberField(
        label="Base model training compute (FLOP)",
        help_text="If known, e.g. 3.8e25. Leave empty if unknown.",
    )
    base_is_systemic_risk = _yes_no_field(
        "Is the base model a general-purpose AI model with systemic risk?",
        "Yes if it was trained with more than 10^25 FLOP or designated by the Commission.",
    )
    synthetic_data_flop = ReadableNumberField(
        label="Compute for non-public synthetic data (FLOP)",
        help_text="Compute spent generating training data, including discarded samples. "
        "Leave empty if none.",
    )

    # Resources (GPU-hours per partition are added in __init__)
    start_date = _date_field("Start date")
    duration_months = forms.TypedChoiceField(
        label="Duration", coerce=int, empty_value=None, required=False
    )
    expected_utilisation = ReadableNumberField(
        label="Expected utilisation of peak",
        parse=numbers.parse_share,
        help_text="Share of the GPUs' peak FLOP/s your code reaches, e.g. 0.4 or 40 %. "
        "Leave empty for the site default.",
    )

    # Team
    pi_name = forms.CharField(label="Principal investigator (PI)", max_length=200, required=False)
    pi_email = forms.EmailField(label="PI e-mail", required=False)
    pi_contract_end = _date_field(
        "PI contract ends on",
        "The PI's contract must run at least 3 months past the end of the allocation.",
    )
    team_size = ReadableNumberField(label="Team size", integer=True, help_text="People.")
    hpc_experience = forms.CharField(
        label="Experience with GPU clusters",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Largest runs so far, schedulers and frameworks used, scaling results.",
    )

    commitments = forms.MultipleChoiceField(
        label="AI Act commitments",
        choices=rules.COMMITMENTS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    technical_annex = forms.FileField(
        label="Technical annex (PDF, at most 10 MB)",
        required=False,
        help_text="Work plan, scaling tests and data management; PDF only.",
    )

    def __init__(self, *args, application: Application, **kwargs):
        self.application = application
        super().__init__(*args, **kwargs)
        mode = application.access_mode
        self.fields["access_mode"].queryset = AccessMode.objects.filter(
            call=application.call_id
        ).select_related("call")
        self.fields["access_mode"].current = mode
        self.fields["duration_months"].choices = [("", "Choose…")] + [
            (m, f"{m} month{'s' if m != 1 else ''}") for m in sorted(mode.durations_months)
        ]
        self.partitions = list(
            Partition.objects.filter(accessmodepartition__access_mode=mode)
            .select_related("cluster")
            .order_by("cluster__name", "name")
        )
        self.resource_fields = []
        for partition in self.partitions:
            name = f"resources_{partition.pk}"
            self.fields[name] = ReadableNumberField(
                label=f"{partition.cluster.display_name} ({partition.accelerator})",
                integer=True,
                help_text=f"GPU-hours on {partition.cluster.name}/{partition.name}; "
                f"peak {float(partition.peak_tflops):g} TFLOP/s per GPU.",
            )
            self.resource_fields.append(name)
        self.ethics_fields = []
        for key, question, explain_if in rules.ETHICS_QUESTIONS:
            self.fields[f"ethics_{key}_answer"] = _yes_no_field(question)
            self.fields[f"ethics_{key}_explanation"] = forms.CharField(
                label=f"Explanation ({rules.ETHICS_TOPICS[key]})",
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text=f"Required if you answer {'yes' if explain_if else 'no'}.",
            )
            self.ethics_fields.append((f"ethics_{key}_answer", f"ethics_{key}_explanation"))
        # Errors of the whole resources section, which has no single input of its own.
        self.section_errors: dict[str, list[str]] = {}
        if not self.is_bound:
            self.initial = self._initial_from(application)

    @staticmethod
    def _initial_from(application: Application) -> dict[str, Any]:
        initial: dict[str, Any] = {"access_mode": application.access_mode_id}
        for name in DRAFT_FIELDS:
            value = getattr(application, name)
            if name in YES_NO_FIELDS:
                value = {True: "yes", False: "no"}.get(value, "")
            initial[name] = value
        for resource in application.resources.all():
            initial[f"resources_{resource.partition_id}"] = resource.gpu_hours
        for key, answer in (application.ethics or {}).items():
            initial[f"ethics_{key}_answer"] = {True: "yes", False: "no"}.get(answer.get("answer"))
            initial[f"ethics_{key}_explanation"] = answer.get("explanation", "")
        for name, typed in (application.unparsed_input or {}).items():
            initial[name] = typed.get("text", "")
        return initial

    def clean_technical_annex(self):
        upload = self.cleaned_data.get("technical_annex")
        if upload:
            problem = rules.upload_problem(upload)
            if problem:
                raise forms.ValidationError(problem)
        return upload

    def draft_values(self) -> dict[str, Any]:
        """Keyword arguments for `application_save_draft` from what could be read.

        Call after `is_valid()`; a field that could not be read is kept as typed in `unparsed`.
        """
        data = {
            name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors
        }
        fields: dict[str, Any] = {}
        for name in DRAFT_FIELDS:
            if name in ("ethics", "commitments"):
                continue
            value = data.get(name)
            if name in YES_NO_FIELDS:
                value = {"yes": True, "no": False}.get(value)
            elif value is None and name in _TEXT_FIELDS:
                value = ""
            fields[name] = value
        fields["commitments"] = list(data.get("commitments") or [])
        fields["ethics"] = {
            key: {
                "answer": {"yes": True, "no": False}.get(data.get(f"ethics_{key}_answer")),
                "explanation": data.get(f"ethics_{key}_explanation") or "",
            }
            for key in rules.ETHICS_KEYS
        }
        resources = {
            p.pk: data.get(f"resources_{p.pk}")
            for p in self.partitions
            if f"resources_{p.pk}" not in self.errors
        }
        unparsed = {
            name: {"text": self.data.get(name, ""), "error": " ".join(errors)}
            for name, errors in self.errors.items()
            if name in self.fields and name not in ("technical_annex", "access_mode")
        }
        return {
            "fields": fields,
            "resources": resources,
            "unparsed": unparsed,
            "access_mode": self.cleaned_data.get("access_mode"),
            "annex": data.get("technical_annex") or None,
        }

    def add_submit_errors(self, errors: dict[str, list[str]]) -> None:
        """Show `validate_for_submit` errors next to their inputs."""
        for key, messages in errors.items():
            name = key.replace(".", "_")
            if key == "__all__":
                for message in messages:
                    self.add_error(None, message)
            elif name in self.fields:
                if name not in self.errors:
                    for message in messages:
                        self.add_error(name, message)
            else:
                self.section_errors.setdefault(key, []).extend(messages)


_TEXT_FIELDS = {
    name
    for name in DRAFT_FIELDS
    if Application._meta.get_field(name).get_internal_type() in ("CharField", "TextField")
}


class AccessModeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: AccessMode) -> str:
        return (
            f"{obj.call.title}: {obj.get_kind_display()} ({obj.size_label}, "
            f"{obj.durations_label}, decision in ~{obj.decision_working_days} working days)"
        )


class StartApplicationForm(PlainLabelsMixin, forms.Form):
    organisation = forms.ModelChoiceField(
        label="Applying organisation", queryset=None, empty_label=None
    )
    access_mode = AccessModeChoiceField(
        label="Call and access mode",
        queryset=None,
        empty_label=None,
        widget=forms.RadioSelect,
        help_text="Playground to try a system, Fast Lane up to 50,000 GPU-hours, "
        "Large Scale beyond that. You can change the mode later.",
    )

    def __init__(self, *args, organisations, access_modes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
        self.fields["access_mode"].queryset = access_modes
