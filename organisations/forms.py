from django import forms

from organisations.models import Country, Membership, Organisation
from organisations.selectors import country_choices
from organisations.services import IDENTITY_FIELDS, IDENTITY_LOCKED, ORGANISATION_FIELDS


class PlainLabelsMixin:
    """Labels without Django's trailing colon, as everywhere else on the site."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class OrganisationForm(PlainLabelsMixin, forms.ModelForm):
    country = forms.ChoiceField(
        label="Country of the registered seat",
        help_text=(
            "Organisations established in an EU member state, an EEA country or a Horizon "
            "Europe associated country are eligible."
        ),
    )

    website = forms.URLField(label="Website", required=False, assume_scheme="https")

    class Meta:
        model = Organisation
        fields = ORGANISATION_FIELDS
        labels = {
            "legal_name": "Legal name",
            "registration_id": "Company registration or VAT number",
            "founding_date": "Founded on",
            "staff_headcount": "Staff headcount",
            "annual_turnover_eur": "Annual turnover (EUR)",
            "balance_sheet_eur": "Balance sheet total (EUR)",
            "website": "Website",
            "controlled_by_registration_id": "Controlling organisation (its registration number)",
            "beneficial_owners": "Beneficial owners",
        }
        help_texts = {
            "staff_headcount": "Full-time equivalents, for the SME test (fewer than 250).",
            "annual_turnover_eur": "Last closed financial year; 0 if none yet.",
            "balance_sheet_eur": "Last closed financial year; 0 if none yet.",
            "controlled_by_registration_id": (
                "If another company holds the majority of votes or capital, give its number."
            ),
        }
        widgets = {
            "founding_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "beneficial_owners": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, identity_locked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = [("", "Choose a country"), *country_choices()]
        if identity_locked:
            for name in IDENTITY_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].help_text = IDENTITY_LOCKED
        for name in ("staff_headcount", "annual_turnover_eur", "balance_sheet_eur"):
            self.fields[name].required = True
        self.fields["legal_name"].widget.attrs["autocomplete"] = "organization"
        self.fields["website"].widget.attrs["placeholder"] = "https://"

    def clean_country(self) -> str:
        code = self.cleaned_data["country"]
        if not Country.objects.filter(code=code).exists():
            raise forms.ValidationError("Choose a country from the list.")
        return code


class InvitationForm(PlainLabelsMixin, forms.Form):
    email = forms.EmailField(
        label="E-mail address of the person to invite",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(
        label="Role",
        choices=Membership.Role.choices,
        initial=Membership.Role.MEMBER,
        help_text="Owners can edit the organisation and invite others; members can apply.",
    )
