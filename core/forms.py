from django import forms

from core.notifications import Kind


class NotificationPreferencesForm(forms.Form):
    """One box per kind of e-mail the person may receive; required ones are shown, fixed on."""

    def __init__(self, *args, kinds: list[Kind], off: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        for kind in kinds:
            self.fields[kind.key] = forms.BooleanField(
                label=kind.label,
                required=False,
                initial=kind.required or kind.key not in off,
                disabled=kind.required,
                help_text="Always sent." if kind.required else "",
            )

    def enabled(self) -> list[str]:
        return [key for key, on in self.cleaned_data.items() if on]
