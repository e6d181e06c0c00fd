"""Reads over usage records: GPU-hours, training compute, energy and emissions, in SQL.

Nothing per record is stored beyond GPU-seconds and measured joules; FLOP, energy and CO2e are
derived in the aggregate from the partition's peak and power, the site's PUE and grid intensity
and the threshold policy's utilisation, so correcting a partition's figures corrects every
report. A record's partition is the one its job ran in when the site knows it, else its
allocation's partition (an allocation is granted on one partition).

Every function runs a fixed number of queries, whatever the number of records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from allocations.models import Allocation, model_key
from systems.estimates import SECONDS_PER_HOUR
from systems.models import Cluster, Partition
from systems.selectors import policy_utilisation
from usage.models import MonthlyUsage, UsageRecord, job_runs_range

JOULES_PER_KWH = 3.6e6
TERA = 1e12


MEASURED = "measured"


ESTIMATED = "estimated"


MIXED = "mixed"


_FLOAT = FloatField()


def _float(expression) -> Cast:
    return Cast(expression, _FLOAT)


def peak_tflop_seconds(prefix: str = "") -> ExpressionWrapper:
    """Per usage record: its GPU-seconds x the peak TFLOP/s of the partition the job ran on, or
    of its allocation's partition when the record names none; summed and x 1e12, the compute at
    utilisation 1. `prefix` reaches the record from another model, e.g. "usage_records__".

    Every compute figure taken from accounting (usage pages, the threshold check, screening, the
    annual report) is a sum of this expression.
    """
    peak = _float(
        Coalesce(
            F(f"{prefix}partition__peak_tflops"), F(f"{prefix}allocation__partition__peak_tflops")
        )
    )
    return ExpressionWrapper(_float(F(f"{prefix}gpu_seconds")) * peak, _FLOAT)


def it_joules() -> Coalesce:
    """Per usage record: measured energy when the scheduler reported it, else GPU-seconds x the
    power of the partition the job ran on: measured wins over the estimate (docs/domain-rules.md).
    """
    power = _float(Coalesce(F("partition__power_watts"), F("allocation__partition__power_watts")))
    return Coalesce(
        _float(F("energy_joules")), ExpressionWrapper(_float(F("gpu_seconds")) * power, _FLOAT)
    )


_IT_JOULES = it_joules()


_FACILITY_JOULES = ExpressionWrapper(_IT_JOULES * _float(F("cluster__site__pue")), _FLOAT)


def used_compute_annotations() -> dict:
    """Annotations for an Allocation queryset: `used_gpu_seconds` and `used_peak_tflop_seconds`
    (see peak_tflop_seconds), in the query that lists the allocations."""
    return {
        "used_gpu_seconds": Coalesce(Sum("usage_records__gpu_seconds"), 0),
        "used_peak_tflop_seconds": Coalesce(Sum(peak_tflop_seconds("usage_records__")), Value(0.0)),
    }


def epoch_sql(column: str) -> str:
    """SQL for a timestamp column in whole seconds since 1970 (UTC), on SQLite and PostgreSQL."""
    if connection.vendor == "postgresql":
        # date_part gives a double, which converts much faster than EXTRACT's numeric
        return f"CAST(date_part('epoch', {column}) AS BIGINT)"
    if connection.vendor == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    raise NotImplementedError(f"No SQL for times in seconds on {connection.vendor}.")


def held_gpu_seconds_sql(alias: str, now: datetime) -> str:
    """SQL for what one usage record (table alias `alias`) held in GPU-seconds from its start
    to its end, a running job until `now`, never less than nothing; NULL for a job without a
    start or GPUs. Whole seconds: the footprint sweep (compliance.footprint) measures jobs the
    same way."""
    start, end = (f"{alias}.{connection.ops.quote_name(column)}" for column in ("start", "end"))
    larger = "MAX" if connection.vendor == "sqlite" else "GREATEST"
    return (
        f"CASE WHEN {start} IS NOT NULL AND {alias}.gpus > 0 THEN "
        f"CAST({alias}.gpus AS DOUBLE PRECISION) * {larger}("
        f"COALESCE({epoch_sql(end)}, {int(now.timestamp())}) - {epoch_sql(start)}, 0) END"
    )


@dataclass(frozen=True)
class UsedCompute:
    """What an allocation's records add up to: GPU-seconds, peak TFLOP-seconds (the sum of
    peak_tflop_seconds) and the accelerator memory of its largest job in GB (GPUs x memory of
    one GPU of the partition it ran on, else of its allocation's; None when unknown); with
    `held_until`, also the GPU-seconds its jobs held from start to end (held_gpu_seconds_sql),
    else None."""

    gpu_seconds: int
    peak_tflop_seconds: float
    largest_job_memory_gb: float | None
    held_gpu_seconds: float | None = None


def allocations_used_compute(
    *, held_until: datetime | None = None, held_by: Iterable[int] | None = None
) -> dict[int, UsedCompute]:
    """Per allocation id with usage: its UsedCompute, in one query; with `held_until`, the
    GPU-seconds its jobs held up to then too, for the allocations of the organisations
    `held_by` (ids; every allocation when None; 0 for the others).

    On PostgreSQL the records are read from their monthly sums (usage.models.MonthlyUsage),
    which hold every run with a start but not what the runs still without an end held (it grows
    with the clock); the runs without a start or an end, few at any time, are read through
    their own index (`usage_record_unfinished`) and added. On SQLite every record is grouped.
    Either way the sums per allocation and partition come first; only they meet the
    partitions, so the join and the peak multiplication run once per (allocation, partition),
    not once per record.
    """
    records = UsageRecord._meta.db_table
    allocations = Allocation._meta.db_table
    partitions = Partition._meta.db_table
    held = "CAST(NULL AS DOUBLE PRECISION)"
    kept_held = held
    if held_until is not None:
        held = held_gpu_seconds_sql(records, held_until)
        kept_held = "CAST(held_gpu_seconds AS DOUBLE PRECISION)"
        if held_by is not None:
            owners = ", ".join(str(int(pk)) for pk in sorted(set(held_by))) or "NULL"
            holding = f"""allocation_id IN (
                SELECT id FROM {allocations} WHERE organisation_id IN ({owners})
            )"""  # noqa: S608 - numbers the code wrote
            held = f"CASE WHEN {holding} THEN {held} END"
            kept_held = f"CASE WHEN {holding} THEN {kept_held} END"
    if connection.vendor == "postgresql":
        monthly = MonthlyUsage._meta.db_table
        rows = f"""
            SELECT allocation_id, partition_id, gpu_seconds, largest_gpus AS gpus,
                   {kept_held} AS held
            FROM {monthly}
            UNION ALL
            SELECT allocation_id, partition_id,
                   CASE WHEN start IS NULL THEN gpu_seconds ELSE 0 END, gpus,
                   CASE WHEN "end" IS NULL THEN {held} END
            FROM {records}
            WHERE allocation_id IS NOT NULL AND (start IS NULL OR "end" IS NULL)
        """  # noqa: S608 - table names from model metadata, numbers the code wrote
    else:
        rows = f"""
            SELECT allocation_id, partition_id, gpu_seconds, gpus, {held} AS held
            FROM {records}
            WHERE allocation_id IS NOT NULL
        """  # noqa: S608 - table names from model metadata, numbers the code wrote
    sql = f"""
        SELECT used.allocation_id,
               SUM(used.gpu_seconds),
               SUM(CAST(used.gpu_seconds AS DOUBLE PRECISION)
                   * CAST(COALESCE(ran.peak_tflops, granted.peak_tflops) AS DOUBLE PRECISION)),
               MAX(used.gpus * COALESCE(ran.memory_gb_per_gpu, granted.memory_gb_per_gpu)),
               SUM(used.held)
        FROM (
            SELECT allocation_id, partition_id, SUM(gpu_seconds) AS gpu_seconds,
                   MAX(gpus) AS gpus, SUM(held) AS held
            FROM ({rows}) runs
            GROUP BY allocation_id, partition_id
        ) used
        JOIN {allocations} allocation ON allocation.id = used.allocation_id
        JOIN {partitions} granted ON granted.id = allocation.partition_id
        LEFT JOIN {partitions} ran ON ran.id = used.partition_id
        GROUP BY used.allocation_id
    """  # noqa: S608 - table names from model metadata, numbers the code wrote
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {
            pk: UsedCompute(
                int(gpu_seconds or 0),
                float(tflop_seconds or 0.0),
                float(memory) if memory else None,
                None if held_until is None else float(held or 0.0),
            )
            for pk, gpu_seconds, tflop_seconds, memory, held in cursor.fetchall()
        }


def _aggregates() -> dict:
    # Rows are counted on gpu_seconds (never NULL) rather than the id: an index holding the
    # columns summed here can then answer without reading the table.
    return {
        "jobs": Count("gpu_seconds"),
        "sum_gpu_seconds": Coalesce(Sum("gpu_seconds"), 0),
        # TFLOP/s x GPU-seconds; x 1e12 in Python keeps the SQL sums in a comfortable range
        "tflop": Coalesce(Sum(peak_tflop_seconds()), Value(0.0)),
        "it_joules": Coalesce(Sum(_IT_JOULES), Value(0.0)),
        "facility_joules": Coalesce(Sum(_FACILITY_JOULES), Value(0.0)),
        "co2e_joule_kg": Coalesce(
            Sum(
                ExpressionWrapper(
                    _FACILITY_JOULES * _float(F("cluster__site__grid_kg_co2e_per_kwh")), _FLOAT
                )
            ),
            Value(0.0),
        ),
        "measured_jobs": Count("gpu_seconds", filter=Q(energy_joules__isnull=False)),
        "estimated_jobs": Count(
            "gpu_seconds", filter=Q(energy_joules__isnull=True, gpu_seconds__gt=0)
        ),
        "first_start": Min("start"),
        "last_end": Max("end"),
        "running_jobs": Count("gpu_seconds", filter=Q(running=True)),
    }


@dataclass(frozen=True)
class UsageTotals:
    """Usage of a set of records: an allocation, a declared model, anything filterable.

    Compute in FLOP (estimate at the policy's utilisation, upper bound at 1.0), energy in kWh
    (IT energy; facility energy = IT x PUE), emissions in kg CO2e (location-based).
    """

    jobs: int
    running_jobs: int
    gpu_seconds: int
    utilisation: float
    flop_estimate: float
    flop_upper_bound: float
    energy_kwh: float
    facility_energy_kwh: float
    co2e_kg: float
    energy_source: str
    measured_jobs: int
    estimated_jobs: int
    first_start: datetime | None
    last_end: datetime | None

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / SECONDS_PER_HOUR

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gpu_hours"] = self.gpu_hours
        for name in ("first_start", "last_end"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


def _energy_source(measured: int, estimated: int) -> str:
    """Measured joules win per record; the whole is "measured" only if every record was."""
    if measured and not estimated:
        return MEASURED
    if measured:
        return MIXED
    return ESTIMATED


def _totals(row: dict, utilisation: float) -> UsageTotals:
    upper = float(row["tflop"] or 0.0) * TERA
    return UsageTotals(
        jobs=row["jobs"],
        running_jobs=row["running_jobs"],
        gpu_seconds=int(row["sum_gpu_seconds"] or 0),
        utilisation=utilisation,
        flop_estimate=upper * utilisation,
        flop_upper_bound=upper,
        energy_kwh=float(row["it_joules"] or 0.0) / JOULES_PER_KWH,
        facility_energy_kwh=float(row["facility_joules"] or 0.0) / JOULES_PER_KWH,
        co2e_kg=float(row["co2e_joule_kg"] or 0.0) / JOULES_PER_KWH,
        energy_source=_energy_source(row["measured_jobs"], row["estimated_jobs"]),
        measured_jobs=row["measured_jobs"],
        estimated_jobs=row["estimated_jobs"],
        first_start=row["first_start"],
        last_end=row["last_end"],
    )


def usage_totals(*, records: QuerySet, utilisation: float | None = None) -> UsageTotals:
    """Totals over any UsageRecord queryset (one query, plus one for the policy if not given)."""
    if utilisation is None:
        utilisation = policy_utilisation()
    return _totals(records.order_by().aggregate(**_aggregates()), utilisation)


def allocation_usage(*, allocation: Allocation, utilisation: float | None = None) -> UsageTotals:
    """Totals of one allocation."""
    return usage_totals(
        records=UsageRecord.objects.filter(allocation=allocation), utilisation=utilisation
    )


def allocations_usage(
    *, allocations: Iterable[Allocation] | QuerySet, utilisation: float | None = None
) -> dict[int, UsageTotals]:
    """Totals per allocation id, in one query; allocations without usage get zero totals."""
    if utilisation is None:
        utilisation = policy_utilisation()
    ids = (
        allocations.values("id")
        if isinstance(allocations, QuerySet)
        else [a.pk for a in allocations]
    )
    rows = (
        UsageRecord.objects.filter(allocation_id__in=ids)
        .order_by()
        .values("allocation_id")
        .annotate(**_aggregates())
    )
    found = {row["allocation_id"]: _totals(row, utilisation) for row in rows}
    empty = _totals(_EMPTY_ROW, utilisation)
    wanted = ids if isinstance(ids, list) else [row["id"] for row in ids]
    return {pk: found.get(pk, empty) for pk in wanted}


_EMPTY_ROW = {
    "jobs": 0,
    "running_jobs": 0,
    "sum_gpu_seconds": 0,
    "tflop": 0.0,
    "it_joules": 0.0,
    "facility_joules": 0.0,
    "co2e_joule_kg": 0.0,
    "measured_jobs": 0,
    "estimated_jobs": 0,
    "first_start": None,
    "last_end": None,
}


def model_usage(*, model_name: str, utilisation: float | None = None) -> UsageTotals:
    """Totals of a declared model: every allocation whose `model_name` it is, on any cluster."""
    return usage_totals(
        records=UsageRecord.objects.filter(allocation__model_key=model_key(model_name)),
        utilisation=utilisation,
    )


def models_usage(
    *, model_names: Iterable[str] | None = None, utilisation: float | None = None
) -> dict[str, UsageTotals]:
    """Totals per declared model (all models with usage, or those named), in one query."""
    if utilisation is None:
        utilisation = policy_utilisation()
    records = UsageRecord.objects.exclude(allocation__model_key="").filter(allocation__isnull=False)
    if model_names is not None:
        records = records.filter(allocation__model_key__in=[model_key(n) for n in model_names])
    rows = records.order_by().values("allocation__model_key").annotate(**_aggregates())
    return {row["allocation__model_key"]: _totals(row, utilisation) for row in rows}


@dataclass(frozen=True)
class SeriesPoint:
    """Cumulative usage at the end of a day (UTC), counting each job on the day it ended
    (or started, while it runs)."""

    day: date
    gpu_seconds: int
    flop_estimate: float
    flop_upper_bound: float

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / SECONDS_PER_HOUR


def usage_series(*, records: QuerySet, utilisation: float | None = None) -> list[SeriesPoint]:
    """Cumulative GPU-seconds and compute per day for charts: one query, one row per day."""
    if utilisation is None:
        utilisation = policy_utilisation()
    rows = (
        records.filter(start__isnull=False)
        .order_by()
        .annotate(day=TruncDate(Coalesce("end", "start")))
        .values("day")
        .annotate(
            sum_gpu_seconds=Coalesce(Sum("gpu_seconds"), 0),
            tflop=Coalesce(
                Sum(peak_tflop_seconds()),
                Value(0.0),
            ),
        )
        .order_by("day")
    )
    points, gpu_seconds, upper = [], 0, 0.0
    for row in rows:
        gpu_seconds += int(row["sum_gpu_seconds"] or 0)
        upper += float(row["tflop"] or 0.0) * 1e12
        points.append(SeriesPoint(row["day"], gpu_seconds, upper * utilisation, upper))
    return points


def usage_jobs(*, records: QuerySet) -> QuerySet:
    """Records for a job table, newest first, each with `it_joules` (measured, else estimated:
    see it_joules); the energy source per row is whether `energy_joules` is set."""
    return (
        records.select_related("partition", "cluster")
        .annotate(it_joules=it_joules())
        .order_by("-start", "-id")
    )


@dataclass(frozen=True)
class UsageOverview:
    """What a usage page shows of a set of records: the totals and the daily series."""

    totals: UsageTotals
    series: list[SeriesPoint]


_SUMMED = [name for name in _EMPTY_ROW if name not in ("first_start", "last_end")]


def usage_overview(*, records: QuerySet, utilisation: float | None = None) -> UsageOverview:
    """Totals and the cumulative daily series of `records`, in one query grouped by day: the
    figures of usage_totals and usage_series with one read of the records instead of two."""
    if utilisation is None:
        utilisation = policy_utilisation()
    # Records that never started have no place in the series (day NULL), only in the totals.
    day = Case(
        When(start__isnull=True, then=None),
        default=TruncDate(Coalesce("end", "start")),
        output_field=DateField(),
    )
    rows = list(records.order_by().annotate(day=day).values("day").annotate(**_aggregates()))
    total = {name: sum(row[name] or 0 for row in rows) for name in _SUMMED}
    starts = [row["first_start"] for row in rows if row["first_start"] is not None]
    ends = [row["last_end"] for row in rows if row["last_end"] is not None]
    total.update(first_start=min(starts, default=None), last_end=max(ends, default=None))
    points, gpu_seconds, upper = [], 0, 0.0
    for row in sorted((r for r in rows if r["day"] is not None), key=lambda r: r["day"]):
        gpu_seconds += int(row["sum_gpu_seconds"] or 0)
        upper += float(row["tflop"] or 0.0) * TERA
        points.append(SeriesPoint(row["day"], gpu_seconds, upper * utilisation, upper))
    return UsageOverview(_totals(total, utilisation), points)


def usage_records_of_job(*, records: QuerySet, job: str) -> QuerySet:
    """The runs of job number `job` (sacct's JobIDRaw, a PBS job number) among `records`, on
    every cluster: read through the run-key index, a range of keys per cluster, where a search
    of the fields reads every record."""
    low, high = job_runs_range(job)
    clusters = list(Cluster.objects.values_list("pk", flat=True))
    runs = Q(job_key=job) | Q(job_key__gte=low, job_key__lt=high)
    return records.filter(runs, cluster__in=clusters)


def year_usage_sql(year: int) -> tuple[str, list]:
    """SQL, with its parameters, of the usage that started in `year` (in the current time zone)
    per allocation and partition: `allocation_ref`, `partition_ref`, `used_gpu_seconds`,
    `measured_joules` and `estimated_gpu_seconds` (those of records without measured energy).

    On PostgreSQL the year's UTC months are read from `MonthlyUsage`, which the database keeps.
    Where the year begins or ends off a UTC midnight, the records between that boundary and
    the UTC month's are added or taken away: they are read through the (allocation, start)
    index, for the allocations with records in that month only. Elsewhere the records are
    grouped.
    """
    if connection.vendor != "postgresql":
        return (
            UsageRecord.objects.filter(start__year=year, allocation__isnull=False)
            .order_by()
            .values(allocation_ref=F("allocation_id"), partition_ref=F("partition_id"))
            .annotate(
                used_gpu_seconds=Sum("gpu_seconds"),
                measured_joules=Sum("energy_joules"),
                estimated_gpu_seconds=Sum("gpu_seconds", filter=Q(energy_joules__isnull=True)),
            )
            .query.sql_with_params()
        )
    zone = timezone.get_current_timezone()
    months = (datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
    edges = (datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone))
    monthly = connection.ops.quote_name(MonthlyUsage._meta.db_table)
    records = connection.ops.quote_name(UsageRecord._meta.db_table)
    parts = [
        f"""SELECT allocation_id, partition_id, records, gpu_seconds, energy_joules,
                   unmetered_gpu_seconds
            FROM {monthly} WHERE month >= %s AND month < %s"""  # noqa: S608
    ]
    params: list = [months[0].date(), months[1].date()]
    for month, edge, sign in ((months[0], edges[0], 1), (months[1], edges[1], -1)):
        if edge == month:
            continue
        if edge > month:  # the year's edge is later than the month's: that span is the other side
            sign = -sign
        low, high = sorted((edge, month))
        parts.append(
            f"""SELECT allocation_id, partition_id, %s, %s * gpu_seconds,
                       %s * coalesce(energy_joules, 0),
                       CASE WHEN energy_joules IS NULL THEN %s * gpu_seconds ELSE 0 END
                FROM {records}
                WHERE start >= %s AND start < %s AND allocation_id IN (
                    SELECT allocation_id FROM {monthly} WHERE month = %s
                )"""  # noqa: S608
        )
        low_month = low.astimezone(UTC).date().replace(day=1)
        params += [sign, sign, sign, sign, low, high, low_month]
    sql = f"""
        SELECT allocation_id AS allocation_ref, partition_id AS partition_ref,
               sum(gpu_seconds) AS used_gpu_seconds, sum(energy_joules) AS measured_joules,
               sum(unmetered_gpu_seconds) AS estimated_gpu_seconds
        FROM ({" UNION ALL ".join(parts)}) parts
        GROUP BY allocation_id, partition_id
        HAVING sum(records) > 0
    """  # noqa: S608 - table names from model metadata, values as parameters
    return sql, params
