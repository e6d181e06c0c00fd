import hashlib
import secrets
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .estimates import PartitionFigures, PolicyFigures

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_-]{0,62}$",
    "Use lower-case letters, digits, '-' and '_', starting with a letter.",
)


def _whole_numbers_between(values: object, low: int, high: int) -> bool:
    """Whether `values` (from a JSON field) is a non-empty list of whole numbers in [low, high]."""
    return (
        isinstance(values, list)
        and bool(values)
        and all(type(value) is int and low <= value <= high for value in values)
    )


class Site(models.Model):
    """A computing centre: where its clusters stand decides PUE, grid carbon and local time."""

    name = models.CharField(max_length=120, unique=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. FI.")
    time_zone = models.CharField(
        max_length=64, help_text="IANA time zone of the scheduler clocks, e.g. Europe/Helsinki."
    )
    pue = models.DecimalField(
        "PUE",
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.20"),
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text="Power usage effectiveness: facility energy / IT energy.",
    )
    grid_kg_co2e_per_kwh = models.DecimalField(
        "grid carbon intensity (kg CO2e/kWh)",
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.2500"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(
                {"time_zone": f"'{self.time_zone}' is not a known IANA time zone."}
            ) from exc


class Cluster(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[SLUG_VALIDATOR],
        help_text="The Slurm cluster name, as in sacctmgr and sacct output.",
    )
    display_name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Partition(models.Model):
    """A Slurm partition, and what ONE scheduler GPU (one gres/gpu unit) of it is."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="partitions")
    name = models.CharField(max_length=63, validators=[SLUG_VALIDATOR], help_text="Slurm name.")
    accelerator = models.CharField(max_length=120)
    gpus_per_node = models.PositiveSmallIntegerField(
        "scheduler GPUs per node", validators=[MinValueValidator(1)]
    )
    nodes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    peak_tflops = models.DecimalField(
        "peak dense BF16 TFLOP/s per scheduler GPU",
        max_digits=8,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    power_watts = models.PositiveIntegerField(
        "power per scheduler GPU (W)", validators=[MinValueValidator(1)]
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="partition_unique_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"

    @property
    def peak_flops(self) -> float:
        return float(self.peak_tflops) * 1e12

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes

    def figures(self) -> PartitionFigures:
        site = self.cluster.site
        return PartitionFigures(
            peak_flops=self.peak_flops,
            power_watts=float(self.power_watts),
            pue=float(site.pue),
            grid_kg_per_kwh=float(site.grid_kg_co2e_per_kwh),
        )


class CallQuerySet(models.QuerySet):
    def open_now(self):
        now = timezone.now()
        return self.filter(state=Call.State.OPEN, opens_at__lte=now).filter(
            Q(closes_at__isnull=True) | Q(closes_at__gt=now)
        )


class Call(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField(null=True, blank=True, help_text="Empty: continuously open.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    reviewers_per_application = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)]
    )
    block_at_full_use = models.BooleanField(
        "block at 100 %",
        default=True,
        help_text="Mark an allocation exhausted (and block it in the scheduler) when fully used.",
    )
    history = HistoricalRecords()

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-opens_at", "title"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.closes_at and self.opens_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": "A call must close after it opens."})

    @property
    def is_open(self) -> bool:
        now = timezone.now()
        return (
            self.state == self.State.OPEN
            and self.opens_at <= now
            and (self.closes_at is None or self.closes_at > now)
        )


class AccessMode(models.Model):
    class Kind(models.TextChoices):
        PLAYGROUND = "playground", "Playground"
        FAST_LANE = "fast_lane", "Fast Lane"
        LARGE_SCALE = "large_scale", "Large Scale"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="access_modes")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField(blank=True)
    min_gpu_hours = models.PositiveIntegerField("minimum GPU-hours", default=0)
    max_gpu_hours = models.PositiveIntegerField(
        "maximum GPU-hours", null=True, blank=True, help_text="Empty: no upper limit."
    )
    durations_months = models.JSONField(
        "allowed durations (months)",
        default=list,
        help_text="Allowed allocation lengths in months, e.g. [1, 2, 3] or [3, 6, 12].",
    )
    decision_working_days = models.PositiveSmallIntegerField("decision target (working days)")
    cutoff_at = models.DateTimeField(
        null=True, blank=True, help_text="Cut-off after which collected applications are decided."
    )
    partitions = models.ManyToManyField(
        Partition, through="AccessModePartition", related_name="access_modes"
    )

    class Meta:
        ordering = ["call", "min_gpu_hours", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["call", "kind"], name="access_mode_unique_per_call")
        ]

    def __str__(self) -> str:
        return f"{self.call.title}: {self.get_kind_display()}"

    def clean(self) -> None:
        errors = {}
        if self.max_gpu_hours is not None and self.max_gpu_hours < self.min_gpu_hours:
            errors["max_gpu_hours"] = "The maximum must not be below the minimum."
        if not _whole_numbers_between(self.durations_months, 1, 36):
            errors["durations_months"] = (
                "Give a list of whole months between 1 and 36, e.g. [3, 6, 12]."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def size_label(self) -> str:
        if self.max_gpu_hours is None:
            if not self.min_gpu_hours:
                return "any size"
            return f"more than {self.min_gpu_hours - 1:,} GPU-hours"
        if self.min_gpu_hours:
            return f"{self.min_gpu_hours:,} to {self.max_gpu_hours:,} GPU-hours"
        return f"up to {self.max_gpu_hours:,} GPU-hours"

    @property
    def durations_label(self) -> str:
        months = sorted(self.durations_months or [])
        if not months:
            return ""
        if months == list(range(months[0], months[-1] + 1)) and len(months) > 2:
            return f"{months[0]}-{months[-1]} months"
        return ", ".join(str(m) for m in months[:-1]) + (
            f" or {months[-1]} months" if len(months) > 1 else f"{months[-1]} months"
        )


class AccessModePartition(models.Model):
    access_mode = models.ForeignKey(AccessMode, on_delete=models.CASCADE)
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT)
    capacity_gpu_hours = models.PositiveBigIntegerField(
        "capacity (GPU-hours)", help_text="GPU-hours this mode may grant on this partition."
    )

    class Meta:
        verbose_name = "eligible partition"
        constraints = [
            models.UniqueConstraint(
                fields=["access_mode", "partition"], name="access_mode_partition_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.partition} ({self.capacity_gpu_hours:,} GPU-hours)"


class ThresholdPolicyQuerySet(models.QuerySet):
    def in_force(self, on: date | None = None) -> "ThresholdPolicy | None":
        on = on or timezone.localdate()
        return self.filter(effective_from__lte=on).order_by("-effective_from", "-version").first()


class ThresholdPolicy(models.Model):
    """The compute thresholds in force from a date (AI Act art. 51(3): they may change)."""

    version = models.PositiveIntegerField(unique=True)
    effective_from = models.DateField()
    gpai_flop = models.FloatField("GPAI threshold (FLOP)", default=1e23)
    systemic_risk_flop = models.FloatField("systemic-risk threshold (FLOP)", default=1e25)
    modification_share = models.FloatField(
        default=1 / 3,
        help_text="Share of the original model's compute that makes a modifier a provider.",
    )
    warning_share = models.FloatField(
        default=0.5, help_text="Warn when compute reaches this share of a threshold."
    )
    default_utilisation = models.FloatField(default=0.4)
    allocation_alert_percentages = models.JSONField(
        "allocation alert levels (%)",
        default=list,
        help_text="Used shares that raise an alert, e.g. [75, 90, 100].",
    )
    note = models.TextField(blank=True, help_text="Source of the figures, e.g. the delegated act.")
    history = HistoricalRecords()

    objects = ThresholdPolicyQuerySet.as_manager()

    class Meta:
        ordering = ["-effective_from", "-version"]
        verbose_name_plural = "threshold policies"

    def __str__(self) -> str:
        return f"Threshold policy v{self.version} (from {self.effective_from:%Y-%m-%d})"

    def clean(self) -> None:
        errors = {}
        if not 0 < self.gpai_flop < self.systemic_risk_flop:
            errors["systemic_risk_flop"] = (
                "The systemic-risk threshold must be above the GPAI threshold."
            )
        if not 0 < self.modification_share <= 1:
            errors["modification_share"] = "Give a share between 0 and 1."
        if not 0 < self.warning_share < 1:
            errors["warning_share"] = "Give a share above 0 and below 1."
        if not 0 < self.default_utilisation <= 1:
            errors["default_utilisation"] = "Utilisation must be above 0 and at most 1."
        if not _whole_numbers_between(self.allocation_alert_percentages, 1, 1000):
            errors["allocation_alert_percentages"] = (
                "Give a list of whole percentages, e.g. [75, 90, 100]."
            )
        if errors:
            raise ValidationError(errors)

    def figures(self) -> PolicyFigures:
        return PolicyFigures(
            gpai_flop=self.gpai_flop,
            systemic_risk_flop=self.systemic_risk_flop,
            modification_share=self.modification_share,
            warning_share=self.warning_share,
            default_utilisation=self.default_utilisation,
        )


ACCOUNT_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_]{0,62}$",
    "A Slurm account is 1-63 characters: lower-case letters, digits and '_', "
    "starting with a letter.",
)
CLUSTER_USER_VALIDATOR = RegexValidator(
    r"^[a-z_][a-z0-9_.-]{0,31}$",
    "A cluster user name is 1-32 characters: lower-case letters, digits, '_', '.' and '-', "
    "starting with a letter or '_'.",
)


class Allocation(models.Model):
    """GPU-hours of one partition granted to an organisation, as one Slurm account."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        EXPIRED = "expired", "Expired"
        CLOSED = "closed", "Closed"

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
        db_index=True,
        help_text="The model lineage this allocation trains; compute is summed per model.",
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

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        where = self.cluster.name if self.cluster_id else "all clusters"
        return f"{self.get_format_display()} for {where} at {self.created_at:%Y-%m-%d %H:%M}"


class SiteTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class SiteToken(models.Model):
    """A secret with which a site pushes one cluster's accounting to the usage API, nothing else.

    Only a digest of the key is stored; the key itself is shown once, when the token is made.
    """

    KEY_PREFIX = "hgs_"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="site_tokens")
    name = models.CharField(
        max_length=100, help_text="What uses the token, e.g. the host that runs sacct."
    )
    key_start = models.CharField(
        max_length=12, editable=False, help_text="The first characters, to recognise the key."
    )
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SiteTokenQuerySet.as_manager()

    class Meta:
        ordering = ["cluster__name", "name"]

    def __str__(self) -> str:
        return f"{self.cluster.name}: {self.name} ({self.key_start}...)"

    @staticmethod
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def key_issue(self) -> str:
        """Give the token a new key and return it; the caller shows it once and saves."""
        key = self.KEY_PREFIX + secrets.token_urlsafe(32)
        self.key_start = key[: len(self.KEY_PREFIX) + 6]
        self.key_digest = self.digest(key)
        return key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UsageImport(models.Model):
    """One run of the accounting importer, whatever way the data came in."""

    class Source(models.TextChoices):
        COMMAND = "command", "Management command"
        API = "api", "API"
        SPOOL = "spool", "Spool directory"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="usage_imports")
    source = models.CharField(max_length=10, choices=Source.choices)
    input_format = models.CharField(max_length=10, default="sacct")
    filename = models.CharField(max_length=255, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    site_token = models.ForeignKey(
        SiteToken,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_imports",
        help_text="The site token the accounting was pushed with, if any.",
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    imported = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    steps_skipped = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    rejected_lines = models.JSONField(
        default=list,
        blank=True,
        help_text="Line number and reason of rejected lines (first 1,000).",
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M}"
        return f"{self.cluster.name} {self.get_source_display()} import at {when}"

    @property
    def summary(self) -> str:
        return (
            f"imported={self.imported} updated={self.updated} unchanged={self.unchanged} "
            f"steps_skipped={self.steps_skipped} unmatched={self.unmatched} "
            f"rejected={self.rejected}"
        )


class UsageRecord(models.Model):
    """One job allocation (or one run of a requeued job) as the scheduler accounted it."""

    # Usage records are written a million at a time (allocations/usage.py), so every index and
    # foreign-key check here is paid per row:
    # - no index a composite one already covers (cluster: the unique (cluster, job_key);
    #   allocation: (allocation, start)), none on links nothing filters by;
    # - (cluster, account) serves only the attribution of unmatched records, so it holds those;
    # - no database constraint on the links: Django's deferred foreign keys make PostgreSQL
    #   check each row and key again at commit, which cost a third of a bulk import. The
    #   importer takes the ids from the rows it joins in the same statement, and Django still
    #   applies PROTECT and SET_NULL when a cluster, allocation, partition or run is deleted.
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.PROTECT,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    job_key = models.CharField(max_length=120, help_text="Unique per run on the cluster.")
    account = models.CharField(max_length=63)
    allocation = models.ForeignKey(
        Allocation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    partition = models.ForeignKey(
        Partition,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
        db_index=False,
        db_constraint=False,
    )
    job_id = models.CharField(max_length=64)
    user = models.CharField(max_length=64, blank=True)
    partition_name = models.CharField(max_length=63, blank=True)
    job_name = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=32)
    running = models.BooleanField(default=False)
    submit = models.DateTimeField(null=True, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    elapsed_seconds = models.PositiveBigIntegerField(default=0)
    gpus = models.PositiveIntegerField(default=0)
    nodes = models.PositiveIntegerField(default=0)
    gpu_seconds = models.PositiveBigIntegerField(default=0)
    energy_joules = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Measured by the scheduler (ConsumedEnergyRaw)."
    )
    import_run = models.ForeignKey(
        UsageImport,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start", "job_key"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "job_key"], name="usage_record_unique_run")
        ]
        indexes = [
            models.Index(
                fields=["cluster", "account"],
                condition=Q(allocation__isnull=True),
                name="usage_record_unmatched",
            ),
            models.Index(fields=["allocation", "start"]),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name} job {self.job_id} ({self.account})"


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
