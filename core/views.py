from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from core import notifications, selectors, services
from core.forms import NotificationPreferencesForm


@login_required
def notification_preferences(request):
    """Which e-mails a person gets: the optional ones can be turned off."""
    kinds = notifications.kinds_for(request.user)
    form = NotificationPreferencesForm(
        request.POST or None, kinds=kinds, off=notifications.opted_out(request.user)
    )
    if request.method == "POST" and form.is_valid():
        notifications.preferences_set(user=request.user, enabled=form.enabled())
        messages.success(request, "Your e-mail preferences are saved.")
        return redirect("notification-preferences")
    return render(request, "core/notification_preferences.html", {"form": form})


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the API docs, old clients)."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


"""The user's own API tokens: made, listed and revoked from their account pages."""


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use the token, e.g. a script.")
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=settings.API_TOKEN_MAX_DAYS,
        initial=settings.API_TOKEN_DAYS,
    )


@login_required
def token_list(request):
    form = TokenForm(request.POST or None)
    new_key = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, new_key = services.token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    days=form.cleaned_data["days"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                form = TokenForm()
        if new_key is None:
            status = 400
    return render(
        request,
        "core/tokens.html",
        {"tokens": selectors.tokens_of(request.user), "form": form, "new_key": new_key},
        status=status,
    )


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = selectors.tokens_of(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    services.token_revoke(token=token, user=request.user)
    messages.success(request, f"The token “{token.name}” is revoked.")
    return redirect("core:tokens")
