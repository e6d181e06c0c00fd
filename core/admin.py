from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from core.errors import TransitionError
from core.throttles import PasswordGuessesLimited, password_authenticate

# Importing these modules registers the usage, alert and register admin pages.


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the product's own services: viewed here, never added, changed or
    deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Related records shown with their parent, never edited there. `select_related` names the
    foreign keys the fields show, fetched with the rows instead of one query per row."""

    extra = 0
    can_delete = False
    select_related: tuple[str, ...] = ()

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.select_related(*self.select_related) if self.select_related else queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        required=False,
        help_text="Recorded in the audit trail and shown to the applicant.",
    )


def apply_with_reason(
    modeladmin, request, queryset, *, title: str, apply, reason_required: bool = False
):
    """Admin action with a confirmation page asking for a reason, then ``apply`` per object."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"].strip()
        if reason_required and not reason:
            form.add_error("reason", "Give a reason.")
        else:
            done = 0
            for obj in queryset:
                try:
                    apply(obj, request.user, reason)
                except (TransitionError, ValidationError) as error:
                    message = error.messages[0] if isinstance(error, ValidationError) else error
                    modeladmin.message_user(request, f"{obj}: {message}", messages.ERROR)
                else:
                    done += 1
            if done:
                modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
            return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": list(queryset),
        "form": form,
        "action": request.POST["action"],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/action_reason.html", context)


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's log-in, checking the password through the site's log-in so that failed
    guesses count in the same limits (core.throttles)."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = password_authenticate(
                    self.request, username=username, password=password
                )
            except PasswordGuessesLimited as limited:
                raise ValidationError(str(limited), code="too_many_attempts") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
