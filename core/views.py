from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static

from core import notifications
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
