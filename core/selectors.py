"""Reads of core: personal API tokens."""

from django.db.models import QuerySet

from core.models import ApiToken


def tokens_of(user) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first, with the user for the password check."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).select_related("user").order_by("-created_at", "-id")
