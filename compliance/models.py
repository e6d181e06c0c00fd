from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from allocations.models import Allocation
from systems.models import ThresholdPolicy


class Scope(models.TextChoices):
    ALLOCATION = "allocation", "Allocation"
    MODEL = "model", "Declared model"
    ORGANISATION = "organisation", "Organisation group"


class Alert(models.Model):
    """A level reached by an allocation, a declared model or an organisation group.

    Raised once per (level, scope, subject, policy version): the check is safe to run any number
    of times.
    """

    level = models.CharField(max_length=32)
    scope = models.CharField(max_length=12, choices=Scope.choices)
    subject = models.CharField(max_length=200, help_text="Account, model name or group id.")
    subject_key = models.CharField(max_length=250, editable=False)
    policy = models.ForeignKey(ThresholdPolicy, on_delete=models.PROTECT, related_name="alerts")
    value = models.FloatField()
    threshold = models.FloatField()
    allocation = models.ForeignKey(
        Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    organisation_ids = models.JSONField(
        default=list, blank=True, editable=False, help_text="Organisations whose owners are told."
    )
    raised_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["level", "scope", "subject_key", "policy"], name="alert_once_per_policy"
            )
        ]
        indexes = [models.Index(fields=["scope", "subject_key"])]

    def __str__(self) -> str:
        return f"{self.level} for {self.get_scope_display().lower()} {self.subject}"

    @property
    def line(self) -> str:
        return (
            f"alert level={self.level} scope={self.scope} subject={self.subject} "
            f"value={self.value:.6g} threshold={self.threshold:.6g}"
        )


class LargeRunEntry(models.Model):
    """The register of large training runs: efforts that crossed the GPAI or systemic-risk line."""

    class Category(models.TextChoices):
        GPAI = "gpai", "GPAI (above the indicative criterion)"
        SYSTEMIC_RISK = "systemic_risk", "Systemic risk (presumed, art. 51(2))"

    class Basis(models.TextChoices):
        USED = "used", "Used so far"
        PROJECTED = "projected", "Projected (used + remaining grant)"

    scope = models.CharField(max_length=12, choices=Scope.choices)
    subject = models.CharField(max_length=200)
    subject_key = models.CharField(max_length=250, editable=False)
    category = models.CharField(max_length=16, choices=Category.choices)
    basis = models.CharField(max_length=10, choices=Basis.choices)
    compute_flop = models.FloatField(
        help_text="Latest estimate, reported to two significant figures."
    )
    projected_flop = models.FloatField(default=0)
    method = models.CharField(max_length=200)
    policy = models.ForeignKey(ThresholdPolicy, on_delete=models.PROTECT, related_name="+")
    first_crossed_on = models.DateField()
    notification_deadline = models.DateField(
        null=True,
        blank=True,
        help_text="Art. 52(1): two weeks after the threshold is (known to be) met.",
    )
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    notified_on = models.DateField(
        null=True,
        blank=True,
        help_text="When the provider confirmed the notification to the Commission.",
    )
    allocations = models.ManyToManyField(Allocation, related_name="register_entries", blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-first_crossed_on", "subject"]
        verbose_name = "large training run"
        verbose_name_plural = "register of large training runs"
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "subject_key", "category"], name="large_run_once_per_category"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.get_category_display()})"
