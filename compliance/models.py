import calendar
from collections.abc import Callable, Iterable
from datetime import date, timedelta

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
    evidence = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="What the level was read from, e.g. the overlapping jobs and their systems.",
    )

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

    @classmethod
    def candidate(
        cls,
        *,
        policy: ThresholdPolicy,
        level: str,
        threshold: float,
        scope: str,
        subject: str,
        subject_key: str,
        value: float,
        concerned: Iterable[Allocation],
        allocation: Allocation | None = None,
        evidence: dict | None = None,
        evidence_source: Callable[[], dict] | None = None,
    ) -> "Alert":
        """An unsaved alert the threshold check may raise. The owners of the `concerned`
        allocations are told. Evidence that costs queries comes from `evidence_source`, called
        only when the alert is raised for the first time."""
        alert = cls(
            level=level,
            scope=scope,
            subject=subject,
            subject_key=subject_key,
            policy=policy,
            value=value,
            threshold=threshold,
            allocation=allocation,
            organisation_ids=sorted({a.organisation_id for a in concerned}),
            evidence=evidence or {},
        )
        alert.evidence_source = evidence_source
        return alert

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
    alerts = models.ManyToManyField(
        Alert,
        related_name="register_entries",
        blank=True,
        help_text=(
            "Alerts this entry cites, e.g. the concurrent footprint or plan deviations of a "
            "split run. The check adds the ones of the same subject and allocations."
        ),
    )
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


def _months_later(day: date, months: int) -> date:
    """The same day `months` calendar months later (the month's last day when it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


class MisuseReport(models.Model):
    """A confidential report of a suspected split run or other misuse, made without an account.

    Nothing about the reporter is stored: no account, name, address or browser, and only the
    day it came in. What they wrote is in `ReportMessage`, encrypted; the reporter reads the
    case again with the case key, of which only a digest is kept. Deadlines follow the EU
    Whistleblower Directive 2019/1937 art. 9(1) (AI Act art. 87): acknowledge within 7 days,
    feedback within 3 months of the acknowledgement (or of the 7 days, when none was sent).
    """

    ACKNOWLEDGE_DAYS = 7
    FEEDBACK_MONTHS = 3

    class Category(models.TextChoices):
        SPLIT_RUN = "split_run", "A training run split to stay under a threshold"
        UNDECLARED = "undeclared", "Compute or a model declared wrongly or not at all"
        MISUSE = "misuse", "Other misuse of the granted compute"
        AI_ACT = "ai_act", "Another suspected infringement of the AI Act"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        CLOSED = "closed", "Closed"

    class Outcome(models.TextChoices):
        NO_INFRINGEMENT = "no_infringement", "Looked into: no infringement found"
        ACTION_TAKEN = "action_taken", "Action taken by the centre"
        REFERRED = "referred", "Referred to the competent authority"
        INSUFFICIENT = "insufficient", "Not enough information to act on"

    case_digest = models.CharField(max_length=64, unique=True, editable=False)
    submission_digest = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    category = models.CharField(max_length=16, choices=Category.choices)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.RECEIVED, editable=False
    )
    received_on = models.DateField(default=timezone.localdate, editable=False)
    acknowledged_on = models.DateField(null=True, blank=True, editable=False)
    feedback_on = models.DateField(
        null=True, blank=True, editable=False, help_text="First reply after the acknowledgement."
    )
    closed_on = models.DateField(null=True, blank=True, editable=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, editable=False)
    outcome_note_sealed = models.TextField(blank=True, editable=False)
    organisations = models.ManyToManyField(
        "organisations.Organisation", related_name="misuse_reports", blank=True
    )
    allocations = models.ManyToManyField(Allocation, related_name="misuse_reports", blank=True)
    alerts = models.ManyToManyField(Alert, related_name="misuse_reports", blank=True)

    class Meta:
        ordering = ["-received_on", "-id"]
        verbose_name = "confidential report"

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.get_category_display().lower()})"

    @property
    def acknowledgement_due(self) -> date:
        return self.received_on + timedelta(days=self.ACKNOWLEDGE_DAYS)

    @property
    def feedback_due(self) -> date:
        start = self.acknowledged_on or self.acknowledgement_due
        return _months_later(start, self.FEEDBACK_MONTHS)


class ReportMessage(models.Model):
    """One message of a confidential report, in either direction, encrypted at rest."""

    class Author(models.TextChoices):
        REPORTER = "reporter", "Reporter"
        OFFICER = "officer", "Governance officer"

    report = models.ForeignKey(MisuseReport, on_delete=models.CASCADE, related_name="messages")
    author = models.CharField(max_length=8, choices=Author.choices)
    officer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body_sealed = models.TextField()
    written_on = models.DateField(default=timezone.localdate)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_author_display()} on {self.written_on:%Y-%m-%d}"
