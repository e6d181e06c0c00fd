import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotificationOptOut(models.Model):
    """A person turned one kind of e-mail off (only kinds that are not required can be)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_opt_outs"
    )
    kind = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_opt_out_once")
        ]

    def __str__(self) -> str:
        return f"{self.user}: no {self.kind}"


class SentNotification(models.Model):
    """One notification that went out: the same kind about the same thing is never sent twice."""

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=120, help_text="What it was about, e.g. allocation:12:30.")
    recipients = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="notification_sent_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def password_fingerprint(user) -> str:
    """Changes whenever the user's password does, whichever way it was changed."""
    return key_digest(user.password or "")


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, *, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    """A personal API key: named, expiring, revocable by its owner, and void once the owner's
    password changes. Only a digest of the key is stored; the key is shown once."""

    KEY_PREFIX = "hgt_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What uses the token, e.g. a script.")
    key_start = models.CharField(max_length=12, editable=False)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    password_fingerprint = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.user}: {self.name} ({self.key_start}...)"

    def key_issue(self) -> str:
        """Give the token a new key and return it; the caller shows it once and saves."""
        key = self.KEY_PREFIX + secrets.token_urlsafe(32)
        self.key_start = key[: len(self.KEY_PREFIX) + 6]
        self.key_digest = key_digest(key)
        return key

    @property
    def password_changed(self) -> bool:
        return self.password_fingerprint != password_fingerprint(self.user)

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.password_changed:
            return "revoked by a password change"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def is_usable(self) -> bool:
        return self.state == "active"
