from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from allocations.names import USER_NAME_RE, USER_NAME_RULE, account_key, account_name_problem
from systems.models import AccessMode, Cluster, Partition


@deconstructible
class AccountNameValidator:
    """`allocations.names.account_name_problem` as a model field validator."""

    def __call__(self, value) -> None:
        problem = account_name_problem(value)
        if problem:
            raise ValidationError(problem + ".", code="invalid")

    def __eq__(self, other) -> bool:
        return isinstance(other, AccountNameValidator)


ACCOUNT_VALIDATOR = AccountNameValidator()
CLUSTER_USER_VALIDATOR = RegexValidator(USER_NAME_RE, f"A cluster user name is {USER_NAME_RULE}.")


def usage_window(
    *, start: date, end: date, time_zone: str, grace_days: int = 0
) -> tuple[datetime, datetime]:
    """When a job must start to count against an allocation: [from, until) in UTC.

    From midnight at the start of the first day to midnight at the end of the last, in the
    site's own time zone (the dates are the site's calendar), then `grace_days` more: jobs
    queued before the end may start after it, and the call decides how long they still count.
    """
    zone = ZoneInfo(time_zone)
    opens = datetime.combine(start, time.min, tzinfo=zone)
    closes = datetime.combine(end + timedelta(days=1 + grace_days), time.min, tzinfo=zone)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def model_key(name: str) -> str:
    """What makes two declared model names the same model: case and spacing do not count.

    Every sum per model (threshold check, usage pages, annual report) groups by this key, so an
    alert's link opens a page showing exactly what the alert counted.
    """
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class DeclaredPlan:
    """What an applicant declared for a grant: the model's size, its data and the compute."""

    reference: str
    flop: float | None = None
    hardware_flop: float | None = None
    parameters: int | None = None
    tokens: int | None = None

    def fields(self) -> dict:
        return {
            "plan_reference": self.reference,
            "planned_flop": self.flop,
            "planned_hardware_flop": self.hardware_flop,
            "planned_parameters": self.parameters,
            "planned_tokens": self.tokens,
        }


class Allocation(models.Model):
    """GPU-hours of one partition granted to an organisation, as one Slurm account."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        EXPIRED = "expired", "Expired"
        CLOSED = "closed", "Closed"

    # Granted and not over: what the scheduler may still run, and what projections count in full.
    LIVE_STATES = (State.SCHEDULED, State.ACTIVE, State.SUSPENDED)

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, related_name="allocations"
    )
    project = models.CharField(max_length=200)
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="allocations")
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="allocations")
    account = models.CharField(
        "Slurm account",
        max_length=63,
        validators=[ACCOUNT_VALIDATOR],
        help_text="Unique per cluster, whatever the case (Slurm stores it in lower case).",
    )
    account_key = models.CharField(
        max_length=63,
        editable=False,
        help_text="The account as compared with accounting: see allocations.names.account_key.",
    )
    gpu_hours = models.PositiveBigIntegerField(
        "granted GPU-hours", help_text="Hours of the partition's scheduler GPU."
    )
    start = models.DateField()
    end = models.DateField()
    usage_from = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Jobs that start from then count."
    )
    usage_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Jobs that start from then on do not count: the end plus the call's grace.",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.SCHEDULED)
    exhausted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by the threshold check when the grant is used up."
    )
    model_name = models.CharField(
        "declared model",
        max_length=120,
        blank=True,
        help_text="The model lineage this allocation trains; compute is summed per model.",
    )
    model_key = models.CharField(
        max_length=120,
        blank=True,
        db_index=True,
        editable=False,
        help_text="The declared model as compared: see model_key().",
    )
    access_mode = models.ForeignKey(
        AccessMode, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations"
    )
    # The plan declared for the grant, kept as granted so that compliance can hold accounting
    # against it without reading the application (docs/domain-rules.md, "Split training runs").
    plan_reference = models.CharField(
        max_length=40,
        blank=True,
        db_index=True,
        editable=False,
        help_text="The granted plan, e.g. application #42: allocations granted together share it.",
    )
    planned_flop = models.FloatField(
        "declared training compute of the plan (FLOP)", null=True, blank=True, editable=False
    )
    planned_hardware_flop = models.FloatField(
        "hardware estimate of the plan (FLOP)", null=True, blank=True, editable=False
    )
    planned_parameters = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    planned_tokens = models.PositiveBigIntegerField(
        "planned training tokens", null=True, blank=True, editable=False
    )
    first_exported_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "account_key"], name="allocation_account_key_per_cluster"
            ),
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")), name="allocation_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["state", "end"])]

    def __str__(self) -> str:
        return f"{self.cluster.name}:{self.account}"

    # Fields that decide a derived one: (derived fields, the fields they come from).
    _DERIVED = (
        ({"model_key"}, {"model_name"}),
        ({"account_key"}, {"account"}),
        ({"usage_from", "usage_until"}, {"start", "end", "cluster", "access_mode"}),
    )

    def save(self, *args, **kwargs) -> None:
        self.model_key = model_key(self.model_name)
        self.account_key = account_key(self.account)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"start", "end", "cluster", "access_mode"} & set(update_fields):
            self.usage_from, self.usage_until = self.window()
        if update_fields is not None:
            extra = {
                name
                for derived, sources in self._DERIVED
                if sources & set(update_fields)
                for name in derived
            }
            if extra:
                kwargs["update_fields"] = {*update_fields, *extra}
        super().save(*args, **kwargs)

    def window(self) -> tuple[datetime, datetime]:
        """[from, until) of the jobs that count against this allocation: see usage_window."""
        grace = 0
        if self.access_mode_id is not None:
            grace = self.access_mode.call.usage_grace_days
        return usage_window(
            start=self.start,
            end=self.end,
            time_zone=self.cluster.site.time_zone,
            grace_days=grace,
        )

    def counts(self, when: datetime | None) -> bool:
        """Whether a job that started (or, not started yet, was submitted) `when` counts
        against this allocation; a job with no time at all cannot be placed outside."""
        if when is None or self.usage_from is None:
            return True
        return self.usage_from <= when < self.usage_until

    def clean(self) -> None:
        if self.partition_id and self.cluster_id and self.partition.cluster_id != self.cluster_id:
            raise ValidationError({"partition": "The partition belongs to another cluster."})
        if self.start and self.end and self.end < self.start:
            raise ValidationError({"end": "An allocation must end on or after its start."})

    @property
    def gpu_minutes(self) -> int:
        return self.gpu_hours * 60

    @property
    def is_exhausted(self) -> bool:
        return self.exhausted_at is not None

    @property
    def is_blocked(self) -> bool:
        """Blocked in the scheduler: no new jobs may start."""
        return self.state != self.State.ACTIVE or self.is_exhausted


class AllocationUser(models.Model):
    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="users")
    username = models.CharField(max_length=32, validators=[CLUSTER_USER_VALIDATOR])
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                fields=["allocation", "username"], name="allocation_user_unique"
            )
        ]

    def __str__(self) -> str:
        return self.username


class AllocationEvent(models.Model):
    """Audit trail: every state change, grant change and user change of an allocation."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=40)
    from_state = models.CharField(max_length=10, blank=True)
    to_state = models.CharField(max_length=10, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.allocation}: {self.action} at {self.at:%Y-%m-%d %H:%M}"


class ChangeRequest(models.Model):
    class Kind(models.TextChoices):
        EXTENSION = "extension", "Extension"
        TOP_UP = "top_up", "Top-up"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    allocation = models.ForeignKey(
        Allocation, on_delete=models.CASCADE, related_name="change_requests"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    extra_gpu_hours = models.PositiveBigIntegerField(default=0)
    new_end = models.DateField(null=True, blank=True)
    justification = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.allocation} ({self.get_state_display()})"


class SchedulerExport(models.Model):
    """One export run: what was produced, by whom, and the baseline for the next `commands`."""

    class Format(models.TextChoices):
        SLURM = "slurm", "sacctmgr load file"
        COMMANDS = "commands", "sacctmgr commands"
        JSON = "json", "JSON"
        CSV = "csv", "CSV"

    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    format = models.CharField(max_length=10, choices=Format.choices)
    checksum = models.CharField("SHA-256", max_length=64)
    snapshot = models.JSONField(
        null=True, blank=True, help_text="Scheduler state after this export."
    )
    content = models.TextField()
    allocations = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    for_site_agent = models.BooleanField(
        default=False,
        help_text="Made for the cluster's site agent: the baseline of later exports only once "
        "the agent reports it applied.",
    )
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text="When the site agent reported it applied."
    )
    # A reference by name, not an import: the token is the site's identity, kept with the usage
    # app that first needed it; PROTECT keeps the history (tokens are revoked, not deleted).
    applied_by_token = models.ForeignKey(
        "usage.SiteToken",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The site token of the agent that applied it.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        where = self.cluster.name if self.cluster_id else "all clusters"
        return f"{self.get_format_display()} for {where} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_pending(self) -> bool:
        """Handed to the site agent and not yet reported applied."""
        return self.for_site_agent and self.applied_at is None
