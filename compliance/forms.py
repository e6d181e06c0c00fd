"""Forms of the confidential reporting pages. None asks who the reporter is."""

from django import forms

from compliance.models import MisuseReport
from compliance.services import MESSAGE_MAX_CHARS


class ReportForm(forms.Form):
    category = forms.ChoiceField(
        label="What is it about?",
        choices=[("", "Choose one"), *MisuseReport.Category.choices],
    )
    text = forms.CharField(
        label="What happened",
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=(
            "Which companies, systems, accounts, models or jobs, and when; how you know. Leave "
            "out anything that would identify you unless you want to be known."
        ),
    )
    # A random token the page makes: a reload that sends the form again opens no second case.
    form_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)


class CaseKeyForm(forms.Form):
    case_key = forms.CharField(
        label="Case key",
        max_length=80,
        widget=forms.PasswordInput(
            render_value=True, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        help_text="The key you were shown when you made the report.",
    )


class CaseMessageForm(forms.Form):
    case_key = forms.CharField(widget=forms.HiddenInput, max_length=80)
    text = forms.CharField(
        label="Add to your report",
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
