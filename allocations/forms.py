from django import forms

from allocations.models import ChangeRequest
from allocations.services import cluster_user_check


class ClusterUserForm(forms.Form):
    username = forms.CharField(
        label="Cluster user name",
        max_length=32,
        help_text="The login name on the supercomputer, e.g. jdoe or _svc.train-1.",
    )

    def clean_username(self) -> str:
        return cluster_user_check(self.cleaned_data["username"].strip())


class ChangeRequestForm(forms.Form):
    kind = forms.ChoiceField(label="What do you need?", choices=ChangeRequest.Kind.choices)
    extra_gpu_hours = forms.IntegerField(
        label="Extra GPU-hours",
        min_value=1,
        required=False,
        help_text="How many more GPU-hours you need.",
    )
    new_end = forms.DateField(
        label="New end date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The day the allocation should end instead.",
    )
    justification = forms.CharField(
        widget=forms.Textarea,
        max_length=5000,
        help_text="Why the change is needed: progress so far, what the extra time or hours buy.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Required for one kind of request only: the label says which, not "optional".
        self.fields["extra_gpu_hours"].needed_for = "for a top-up"
        self.fields["new_end"].needed_for = "for an extension"

    def clean(self):
        data = super().clean()
        if data.get("kind") == ChangeRequest.Kind.TOP_UP and not data.get("extra_gpu_hours"):
            self.add_error("extra_gpu_hours", "Say how many GPU-hours you need.")
        if data.get("kind") == ChangeRequest.Kind.EXTENSION and not data.get("new_end"):
            self.add_error("new_end", "Give the new end date.")
        return data
