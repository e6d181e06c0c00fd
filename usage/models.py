import hashlib
import secrets

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocations.models import Allocation
from allocations.names import account_key
from systems.models import Cluster, Partition


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
        QUEUED = "queued", "Queued"  # pushed, waiting for a worker
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # the process importing it ended without finishing (killed, crashed, shut down): what
        # its committed batches wrote stays, and importing the same input again completes it
        INTERRUPTED = "interrupted", "Interrupted"

    FINISHED = (Status.DONE, Status.FAILED, Status.INTERRUPTED)

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
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    host = models.CharField(
        max_length=255, blank=True, help_text="The machine of the process importing it."
    )
    pid = models.PositiveIntegerField(
        null=True, blank=True, help_text="The process importing it, on that machine."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When the importing process last committed a batch."
    )
    # A pushed upload, kept until a worker has imported it (see usage.uploads).
    upload = models.CharField(max_length=255, blank=True, editable=False)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="How to read the input: timezone, fields, delimiter, time_format.",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times a worker started importing it."
    )
    imported = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    steps_skipped = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    outside_window = models.PositiveIntegerField(
        default=0,
        help_text="Runs of an account with an allocation that started outside its usage window: "
        "kept, never counted against the grant.",
    )
    no_gpu_field = models.PositiveIntegerField(
        default=0,
        help_text="Runs on a GPU partition whose line named no GPUs at all: imported with zero.",
    )
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

    # The summary line: the buckets every non-step line counts in exactly one of (CONTRACT.md),
    # then counts that inform about lines already in a bucket.
    BUCKETS = (
        "imported",
        "updated",
        "unchanged",
        "steps_skipped",
        "unmatched",
        "rejected",
        "outside_window",
    )
    INFORMATIONAL = ("no_gpu_field",)

    @property
    def summary(self) -> str:
        return " ".join(
            f"{name}={getattr(self, name)}" for name in self.BUCKETS + self.INFORMATIONAL
        )


def job_runs_range(job: str) -> tuple[str, str]:
    """[low, high) in byte order of the run keys of job number `job` that carry a time
    (`<job>@<time>`: sacct's JobIDRaw and submit time, PBS's job number and start): `@` and
    `A` are neighbours. A run without a time has the key `<job>` alone."""
    return f"{job}@", f"{job}A"


# The columns of the usage table that the monthly sums (MonthlyUsage) count.
MONTHLY_USAGE_COUNTED = (
    'allocation_id, partition_id, start, "end", gpus, gpu_seconds, energy_joules'
)


def monthly_usage_added_sql(rows: str) -> str:
    """SQL that adds records just inserted to the monthly sums (see MonthlyUsage): `rows` is
    what they are read from, a statement's RETURNING MONTHLY_USAGE_COUNTED or the table. It
    gives one row when there were records, none otherwise."""
    added = (
        "SELECT usage_monthly_usage_add_records(array_agg(1), array_agg(allocation_id),"
        ' array_agg(partition_id), array_agg(start), array_agg("end"), array_agg(gpus),'
        " array_agg(gpu_seconds), array_agg(energy_joules)) FROM "
    )
    # No rows, no call: a re-import's batches insert none.
    return added + rows + " HAVING count(*) > 0"  # `rows` is SQL from this code, never input


def _monthly_usage_add(ids: list[int]) -> None:
    if connection.vendor == "postgresql" and ids:
        table = connection.ops.quote_name(UsageRecord._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(monthly_usage_added_sql(f"{table} WHERE id = ANY(%s)"), [ids])


class UsageRecordQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """New records only, added to the monthly sums: a run stored again goes through the
        importer, which knows which of its runs it inserted."""
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise ValueError(
                "Usage records are created here, never merged: import them (usage.importer)."
            )
        with transaction.atomic(using=self.db, savepoint=False):
            made = super().bulk_create(objs, *args, **kwargs)
            _monthly_usage_add([record.pk for record in made])
        return made


class UsageRecord(models.Model):
    """One job allocation (or one run of a requeued job) as the scheduler accounted it."""

    # Usage records are written a million at a time (usage/importer/), so every index and
    # foreign-key check here is paid per row:
    # - no index a composite one already covers (cluster: the unique (cluster, job_key);
    #   allocation: (allocation, start)), none on links nothing filters by;
    # - (cluster, account_key) serves only the attribution of unmatched records, so it holds
    #   those;
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
    # On PostgreSQL the column compares bytewise (COLLATE "C", migration 0004): the import
    # reads a job's runs as a range of keys. A change of this field must keep that collation.
    job_key = models.CharField(max_length=120, help_text="Unique per run on the cluster.")
    account = models.CharField(max_length=63, help_text="As the scheduler printed it.")
    account_key = models.CharField(
        max_length=63,
        help_text="The account as compared with allocations: allocations.names.account_key.",
    )
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
    gpus = models.PositiveIntegerField(default=0, help_text="Whole scheduler GPUs.")
    gpu_slices = models.PositiveIntegerField(
        default=0, help_text="MIG slices, each counted at its profile's share of a GPU."
    )
    nodes = models.PositiveIntegerField(default=0)
    gpu_seconds = models.PositiveBigIntegerField(
        default=0, help_text="Elapsed seconds x (whole GPUs + the GPU share of the slices)."
    )
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

    objects = UsageRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-start", "job_key"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "job_key"], name="usage_record_unique_run")
        ]
        indexes = [
            models.Index(
                fields=["cluster", "account_key"],
                condition=Q(allocation__isnull=True),
                name="usage_record_unattributed",
            ),
            models.Index(fields=["allocation", "start"]),
            # The runs the monthly sums leave out or hold only in part: what reads them
            # (usage.selectors.allocations_used_compute) adds these few to the sums.
            models.Index(
                fields=["allocation"],
                condition=Q(allocation__isnull=False)
                & (Q(start__isnull=True) | Q(end__isnull=True)),
                name="usage_record_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name} job {self.job_id} ({self.account})"

    def save(self, *args, **kwargs) -> None:
        # The importer writes account_key itself; this covers records made one at a time.
        self.account_key = account_key(self.account)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "account" in update_fields:
            kwargs["update_fields"] = {*update_fields, "account_key"}
        if not self._state.adding:
            super().save(*args, **kwargs)
            return
        with transaction.atomic(savepoint=False):
            super().save(*args, **kwargs)
            _monthly_usage_add([self.pk])


class MonthlyUsage(models.Model):
    """What an allocation's records that started in one UTC month add up to, per partition.

    On PostgreSQL these rows are kept in the transaction that writes the records (migrations
    0007 and 0008): what inserts records adds them (`monthly_usage_added_sql`: the importer,
    `save` and `bulk_create`), and the database's statement triggers take away and add what
    updates and deletes change, whatever runs them (the importer's merge, the admin, a deleted
    allocation or partition); when the run with the most GPUs goes, the month's largest is
    looked up again among its records. Records without an allocation or a start are left out,
    and a month whose records are all gone loses its row. SQLite keeps none; what reads these
    rows groups the records there.
    """

    allocation = models.ForeignKey(
        Allocation,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    partition = models.ForeignKey(
        Partition,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
        help_text="Where the records ran; empty for runs on a partition the site lacks.",
    )
    month = models.DateField(help_text="The first day of the UTC month the records started in.")
    records = models.BigIntegerField()
    gpu_seconds = models.BigIntegerField()
    energy_joules = models.BigIntegerField(help_text="Measured by the scheduler, where it was.")
    unmetered_gpu_seconds = models.BigIntegerField(
        help_text="GPU-seconds of the records without a measured energy."
    )
    largest_gpus = models.PositiveIntegerField(
        default=0, help_text="The most whole GPUs one of the records held."
    )
    held_gpu_seconds = models.BigIntegerField(
        default=0,
        help_text="Whole GPUs x whole seconds from start to end of the records that ended.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "allocation",
                Coalesce("partition", Value(0)),
                "month",
                name="usage_monthly_usage_unique",
            )
        ]

    def __str__(self) -> str:
        return f"allocation {self.allocation_id}, {self.month:%Y-%m}"
