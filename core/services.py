"""Writes of core: personal API tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.models import ApiToken, password_fingerprint


def token_create(*, user, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`, valid `days` (the site's default when None); returns the token
    and its key, which is shown once and never stored."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(
            {"name": "Name the token after what will use it, e.g. 'nightly report'."}
        )
    if len(name) > 100:
        raise ValidationError({"name": "A token's name has at most 100 characters."})
    days = settings.API_TOKEN_DAYS if days is None else days
    if (
        isinstance(days, bool)
        or not isinstance(days, int)
        or not 1 <= days <= (settings.API_TOKEN_MAX_DAYS)
    ):
        raise ValidationError(
            {"days": f"A token is valid between 1 and {settings.API_TOKEN_MAX_DAYS} days."}
        )
    token = ApiToken(
        user=user,
        name=name,
        password_fingerprint=password_fingerprint(user),
        expires_at=timezone.now() + timedelta(days=days),
    )
    key = token.key_issue()
    token.save()
    return token, key


def token_revoke(*, token: ApiToken, user) -> ApiToken:
    """The owner revokes one of their tokens; revoking twice changes nothing."""
    if token.user_id != user.pk:
        raise PermissionError("Only the token's owner can revoke it.")
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    token.refresh_from_db()
    return token


def tokens_revoke_all(*, user) -> int:
    """Every token of `user` stops working (e.g. after their password changed)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
