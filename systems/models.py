from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from systems.estimates import NVIDIA_MIG_SHARES, PartitionFigures, PolicyFigures

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
    account_instructions = models.TextField(
        "how to get a user account",
        blank=True,
        help_text="Shown to applicants next to their cluster users: how a person gets a log-in "
        "on this system (the centre's user portal, identity service, who to write to).",
    )

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
    memory_gb_per_gpu = models.PositiveIntegerField(
        "accelerator memory per scheduler GPU (GB)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty when unknown: jobs here then count towards no memory level.",
    )
    gpu_slice_profiles = models.JSONField(
        "GPU slice profiles",
        null=True,
        blank=True,
        help_text=(
            'MIG profile -> share of one scheduler GPU, e.g. {"1g": 0.25, "2g": 0.5, '
            '"4g": 1} for an A30. Empty: the seven-slice table of A100/H100 for an NVIDIA '
            "accelerator, no slices otherwise; {} declares that the partition has none."
        ),
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="partition_unique_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"

    def clean(self) -> None:
        profiles = self.gpu_slice_profiles
        if profiles is None:
            return
        if not isinstance(profiles, dict) or not all(
            isinstance(name, str)
            and name.strip()
            and type(share) in (int, float)
            and 0 < share <= 1
            for name, share in profiles.items()
        ):
            raise ValidationError(
                {
                    "gpu_slice_profiles": "Give each profile's share of one GPU, above 0 and at "
                    'most 1, e.g. {"1g": 0.25, "2g": 0.5, "4g": 1}.'
                }
            )

    def slice_profiles(self) -> dict[str, float]:
        """The MIG profiles this partition's GPUs are sliced into, with each one's share of a
        scheduler GPU: as declared, else by the accelerator (see gpu_slice_profiles)."""
        if self.gpu_slice_profiles is not None:
            return dict(self.gpu_slice_profiles)
        if "nvidia" in self.accelerator.lower():
            return dict(NVIDIA_MIG_SHARES)
        return {}

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
    usage_grace_days = models.PositiveSmallIntegerField(
        "usage grace (days)",
        default=0,
        validators=[MaxValueValidator(366)],
        help_text=(
            "Jobs that start up to this many days after an allocation's end still count "
            "against it (jobs queued before the end may start after it)."
        ),
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
    # Split runs (docs/domain-rules.md, "Split training runs"). Empty levels are off.
    footprint_gpus = models.PositiveIntegerField(
        "footprint: scheduler GPUs held at once",
        null=True,
        blank=True,
        default=512,
        help_text=(
            "An organisation group holding more than this many scheduler GPUs at once, on at "
            "least the minimum number of systems, for more than the minimum hours. Empty: off."
        ),
    )
    footprint_memory_gb = models.PositiveIntegerField(
        "footprint: accelerator memory held at once (GB)",
        null=True,
        blank=True,
        default=32_768,
        help_text=(
            "The same for the accelerator memory of those GPUs, which bounds the size of the "
            "model a run can train. Empty: off."
        ),
    )
    footprint_min_systems = models.PositiveSmallIntegerField(
        "footprint: minimum systems at once", default=2, validators=[MinValueValidator(1)]
    )
    footprint_min_hours = models.FloatField(
        "footprint: minimum hours",
        default=24.0,
        help_text="How long the group must hold it without a break.",
    )
    job_memory_gb = models.PositiveIntegerField(
        "one job's accelerator memory (GB)",
        null=True,
        blank=True,
        default=65_536,
        help_text="A single job holding more than this (its GPUs x memory per GPU). Empty: off.",
    )
    plan_overrun_factor = models.FloatField(
        "plan overrun factor",
        null=True,
        blank=True,
        default=1.0,
        help_text=(
            "A granted plan whose allocations have used more than its declared compute times "
            "this, before their end date. Empty: off."
        ),
    )
    model_declaration_factor = models.FloatField(
        "declared model factor",
        null=True,
        blank=True,
        default=1.5,
        help_text=(
            "A declared model whose compute on all systems exceeds its largest single declared "
            "plan times this. Empty: off."
        ),
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
        if self.footprint_min_hours is not None and self.footprint_min_hours < 0:
            errors["footprint_min_hours"] = "Give 0 hours or more."
        for name in ("plan_overrun_factor", "model_declaration_factor"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                errors[name] = "Give a factor above 0, e.g. 1.5."
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
