"""Models of the vetting workflow after submission: screening flags, reviewers and their conflicts,
assignments, the rubric of a call, reviews with criterion scores, and the call manager's decisions.

Every write goes through vetting.services.review; the admin and the ranking page only call it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from vetting.screening import flag_label

__all__ = [
    "ScreeningFlag",
    "ReviewerProfile",
    "ConflictDeclaration",
    "ReviewAssignment",
    "Rubric",
    "RubricCriterion",
    "Review",
    "CriterionScore",
    "Decision",
    "DecisionGrant",
]


class ScreeningFlag(models.Model):
    """One finding of the automatic screening, shown to reviewers and call managers."""

    class Severity(models.TextChoices):
        BLOCKING = "blocking", "Blocking"
        WARNING = "warning", "Warning"

    application = models.ForeignKey(
        "vetting.Application", on_delete=models.CASCADE, related_name="screening_flags"
    )
    code = models.CharField(max_length=40)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["severity", "code", "id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "code"], name="screening_flag_once")
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.code}"

    @property
    def label(self) -> str:
        return flag_label(self.code)


class ReviewerProfile(models.Model):
    """What the call manager needs to assign a reviewer fairly: expertise and ties."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_profile"
    )
    expertise = models.TextField(blank=True, help_text="Fields the reviewer is expert in.")
    affiliations = models.TextField(
        blank=True,
        help_text="One per line: organisation names or registration ids the reviewer works for "
        "or with. The reviewer is never assigned their applications.",
    )
    email_domains = models.TextField(
        "e-mail domains",
        blank=True,
        help_text="One per line, e.g. aurora-ai.example. Applications whose PI or members use "
        "one of them are never assigned to this reviewer.",
    )
    max_load_per_call = models.PositiveSmallIntegerField(
        "maximum assignments per call", default=8, validators=[MinValueValidator(1)]
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def affiliation_list(self) -> list[str]:
        return [line.strip() for line in self.affiliations.splitlines() if line.strip()]

    @property
    def email_domain_list(self) -> list[str]:
        return [
            line.strip().lower().lstrip("@")
            for line in self.email_domains.splitlines()
            if line.strip()
        ]


class ConflictDeclaration(models.Model):
    """A reviewer's statement on one application: no conflict of interest, or a conflict.

    A conflict also keeps the reviewer off the organisation's other applications.
    """

    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conflict_declarations"
    )
    application = models.ForeignKey(
        "vetting.Application", on_delete=models.CASCADE, related_name="conflict_declarations"
    )
    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    has_conflict = models.BooleanField()
    explanation = models.TextField(blank=True)
    declared_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-declared_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["reviewer", "application"], name="conflict_declaration_once"
            )
        ]

    def __str__(self) -> str:
        what = "conflict" if self.has_conflict else "no conflict"
        return f"{self.reviewer}: {what} on {self.application}"


class ReviewAssignment(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for the conflict-of-interest statement"
        ACCEPTED = "accepted", "No conflict: reviewing"
        SUBMITTED = "submitted", "Review submitted"
        RELEASED = "released", "Released (conflict of interest)"

    application = models.ForeignKey(
        "vetting.Application", on_delete=models.CASCADE, related_name="assignments"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_assignments"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    conflict_checked_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the reviewer was e-mailed."
    )

    class Meta:
        ordering = ["-assigned_at", "-id"]
        verbose_name = "review assignment"
        constraints = [
            models.UniqueConstraint(fields=["application", "reviewer"], name="assignment_once")
        ]
        indexes = [models.Index(fields=["reviewer", "state"])]

    def __str__(self) -> str:
        return f"Review of {self.application}"

    @property
    def sees_application(self) -> bool:
        """The full application is shown only after the reviewer declared no conflict."""
        return self.state in (self.State.ACCEPTED, self.State.SUBMITTED)


class Rubric(models.Model):
    """How the reviewers of one call score; the default rubric is in docs/domain-rules.md."""

    call = models.OneToOneField("systems.Call", on_delete=models.CASCADE, related_name="rubric")
    scale_max = models.PositiveSmallIntegerField(
        "highest score", default=5, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    disagreement_points = models.DecimalField(
        "disagreement above (points)",
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.50"),
        help_text="Reviews whose weighted scores differ by more are flagged for discussion.",
    )

    class Meta:
        ordering = ["call"]

    def __str__(self) -> str:
        return f"Rubric of {self.call}"


class RubricCriterion(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="criteria")
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)
    guidance = models.TextField(blank=True, help_text="What reviewers judge.")
    weight = models.PositiveSmallIntegerField(
        "weight (%)", validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    minimum_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: no minimum. Below it the proposal fails."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rubric", "position", "id"]
        verbose_name_plural = "rubric criteria"
        constraints = [
            models.UniqueConstraint(fields=["rubric", "key"], name="rubric_criterion_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    class Recommendation(models.TextChoices):
        APPROVE = "approve", "Approve"
        WAITLIST = "waitlist", "Waitlist"
        REJECT = "reject", "Reject"

    assignment = models.OneToOneField(
        ReviewAssignment, on_delete=models.CASCADE, related_name="review"
    )
    recommendation = models.CharField(max_length=10, choices=Recommendation.choices, blank=True)
    comment = models.TextField("overall comment", blank=True)
    weighted_score = models.FloatField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["assignment__application", "id"]

    def __str__(self) -> str:
        return f"Review of {self.assignment.application}"

    @property
    def is_submitted(self) -> bool:
        return self.submitted_at is not None


class CriterionScore(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="scores")
    criterion = models.ForeignKey(RubricCriterion, on_delete=models.PROTECT, related_name="+")
    score = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["criterion__position", "criterion_id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "criterion"], name="criterion_score_once")
        ]

    def __str__(self) -> str:
        return f"{self.criterion}: {self.score}"


class Decision(models.Model):
    """The call manager's decision; an approval keeps the granted hours and its allocations."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WAITLISTED = "waitlisted", "Waitlisted"

    application = models.ForeignKey(
        "vetting.Application", on_delete=models.PROTECT, related_name="decisions"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the applicant was e-mailed."
    )
    start = models.DateField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    allocations = models.ManyToManyField(
        "allocations.Allocation", blank=True, related_name="decisions"
    )

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            # Waitlisted then approved is two decisions; the same outcome twice is a race lost.
            models.UniqueConstraint(fields=["application", "outcome"], name="decision_once"),
            models.CheckConstraint(
                condition=Q(outcome="approved", start__isnull=False, end__isnull=False)
                | ~Q(outcome="approved"),
                name="decision_approval_has_dates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.application}"

    @property
    def granted_gpu_hours(self) -> int:
        return sum(grant.gpu_hours for grant in self.grants.all())


class DecisionGrant(models.Model):
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="grants")
    partition = models.ForeignKey("systems.Partition", on_delete=models.PROTECT, related_name="+")
    gpu_hours = models.PositiveBigIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["partition__cluster__name", "partition__name"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "partition"], name="decision_grant_once")
        ]

    def __str__(self) -> str:
        return f"{self.partition}: {self.gpu_hours:,} GPU-hours"
