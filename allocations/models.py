from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from allocations.names import ACCOUNT_NAME_RE, ACCOUNT_NAME_RULE, USER_NAME_RE, USER_NAME_RULE
from systems.models import AccessMode, Cluster, Partition

ACCOUNT_VALIDATOR = RegexValidator(ACCOUNT_NAME_RE, f"A Slurm account is {ACCOUNT_NAME_RULE}.")
CLUSTER_USER_VALIDATOR = RegexValidator(USER_NAME_RE, f"A cluster user name is {USER_NAME_RULE}.")


def model_key(name: str) -> str:
    """What makes two declared model names the same model: case and spacing do not count.

    Every sum per model (threshold check, usage pages, annual report) groups by this key, so an
    alert's link opens a page showing exactly what the alert counted.
    """
    return " ".join(name.split()).casefold()


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
        help_text="Unique per cluster.",
    )
    gpu_hours = models.PositiveBigIntegerField(
        "granted GPU-hours", help_text="Hours of the partition's scheduler GPU."
    )
    start = models.DateField()
    end = models.DateField()
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
    first_exported_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "account"], name="allocation_account_per_cluster"
            ),
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")), name="allocation_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["state", "end"])]

    def __str__(self) -> str:
        return f"{self.cluster.name}:{self.account}"

    def save(self, *args, **kwargs) -> None:
        self.model_key = model_key(self.model_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "model_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "model_key"}
        super().save(*args, **kwargs)

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
