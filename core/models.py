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
