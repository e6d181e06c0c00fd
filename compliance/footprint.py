"""What an organisation group held at the same time, across all systems: scheduler GPUs, peak
FLOP/s and accelerator memory, from the start and end of its jobs.

One sweep in SQL: every job adds its GPUs at its start and takes them back at its end (a
running job ends now); a running sum over those events, ordered by time, is what the group
held from each event to the next. Per system the same sum tells when the group held anything
there, so the number of systems held at once comes out of the same pass. Nothing loops over
jobs in Python, and the number of queries does not grow with them.

Times are whole seconds since 1970 (UTC) inside the query, so that the same SQL runs on
SQLite (3.25 or newer, for window functions) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Q

from allocations.models import Allocation
from systems.models import Partition
from usage.models import UsageRecord

DAY = 86_400


GPUS = "gpus"


MEMORY = "mem"


MEASURES = (GPUS, MEMORY)


@dataclass(frozen=True)
class Stretch:
    """An unbroken time in which a group held more than a level (see `footprint_stretches`)."""

    group: str
    start: datetime
    end: datetime
    peak_gpus: int
    peak_memory_gb: float
    peak_tflops: float
    peak_systems: int

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class DayPeak:
    """The most a group held at once on one day (UTC)."""

    day: date
    gpus: int
    tflops: float
    memory_gb: float
    systems: int


@dataclass(frozen=True)
class RecordScope:
    """Which usage records count: those of allocations live on `today` or ended at most
    `recent_days` before it, and (when given) only what overlapped [since, until)."""

    today: date | None = None
    recent_days: int = 31
    since: datetime | None = None
    until: datetime | None = None

    @property
    def recent(self) -> date | None:
        return self.today - timedelta(days=self.recent_days) if self.today else None

    def records(self, records):
        """The usage records (a queryset) of the allocations in scope."""
        if self.today is None:
            return records
        return records.filter(
            Q(allocation__state__in=Allocation.LIVE_STATES) | Q(allocation__end__gte=self.recent)
        )


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    if connection.vendor == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    raise NotImplementedError(f"The footprint sweep has no SQL for {connection.vendor}.")


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def _group_numbers(groups: Mapping[int, str]) -> tuple[str, list[str]]:
    """A VALUES list (organisation id, group number) and the group subjects by number.

    Only whole numbers the code made go into the statement, so it needs no parameters (which
    also keeps SQLite's limit on them out of the way for many organisations).
    """
    subjects = sorted(set(groups.values()))
    number = {subject: n for n, subject in enumerate(subjects)}
    rows = ", ".join(f"({int(org)}, {number[subject]})" for org, subject in sorted(groups.items()))
    return rows, subjects


def _levels_sql(groups_sql: str, scope: RecordScope, now: datetime, *, daily: bool) -> str:
    """The common part of every footprint query: `levels` holds, per group and event time `t`,
    what the group held from `t` until `t_next` (NULL after its last event)."""
    q = connection.ops.quote_name
    record = UsageRecord._meta.db_table
    allocation = Allocation._meta.db_table
    partition = Partition._meta.db_table
    live = ", ".join(f"'{state}'" for state in Allocation.LIVE_STATES)
    now_s = _seconds(now)
    where = [f"r.{q('start')} IS NOT NULL", "r.gpus > 0"]
    if scope.today is not None:
        where.append(f"(a.state IN ({live}) OR a.{q('end')} >= '{scope.recent.isoformat()}')")
    window = []
    if scope.since is not None:
        window.append(f"e > {_seconds(scope.since)}")
    if scope.until is not None:
        window.append(f"s < {_seconds(scope.until)}")
    # Midnight rows (no change) split the held levels by day, for the daily peaks.
    boundaries = (
        """
        UNION ALL
        SELECT grp, d * 86400, 0, 0, 0, 0 FROM days"""
        if daily
        else ""
    )
    days_cte = (
        """,
    days(grp, d, last_day) AS (
        SELECT grp, MIN(s) / 86400 + 1, MAX(e) / 86400 FROM jobs GROUP BY grp
        UNION ALL
        SELECT grp, d + 1, last_day FROM days WHERE d < last_day
    )"""
        if daily
        else ""
    )
    return f"""
    WITH RECURSIVE
    grp(organisation_id, grp) AS (VALUES {groups_sql}),
    records AS (
        SELECT g.grp AS grp,
               r.cluster_id AS cluster_id,
               {_epoch(f"r.{q('start')}")} AS s,
               COALESCE({_epoch(f"r.{q('end')}")}, {now_s}) AS e,
               r.gpus AS gpus,
               r.gpus * COALESCE(p.memory_gb_per_gpu, ap.memory_gb_per_gpu, 0) AS mem,
               r.gpus * COALESCE(p.peak_tflops, ap.peak_tflops, 0) AS tflops
        FROM {q(record)} r
        JOIN {q(allocation)} a ON a.id = r.allocation_id
        JOIN grp g ON g.organisation_id = a.organisation_id
        JOIN {q(partition)} ap ON ap.id = a.partition_id
        LEFT JOIN {q(partition)} p ON p.id = r.partition_id
        WHERE {" AND ".join(where)}
    ),
    jobs AS (
        SELECT * FROM records WHERE {" AND ".join(["e > s", *window])}
    ){days_cte},
    events AS (
        SELECT grp, cluster_id, s AS t, gpus AS dg, mem AS dm, tflops AS df FROM jobs
        UNION ALL
        SELECT grp, cluster_id, e, -gpus, -mem, -tflops FROM jobs
    ),
    per_system AS (
        SELECT grp, cluster_id, t, SUM(dg) AS dg, SUM(dm) AS dm, SUM(df) AS df
        FROM events GROUP BY grp, cluster_id, t
    ),
    system_held AS (
        SELECT grp, t, dg, dm, df,
               SUM(dg) OVER (
                   PARTITION BY grp, cluster_id ORDER BY t ROWS UNBOUNDED PRECEDING
               ) AS held
        FROM per_system
    ),
    system_changes AS (
        -- +1 when the group starts holding GPUs on a system, -1 when it holds none there again
        SELECT grp, t, dg, dm, df,
               CASE WHEN held > 0 AND held - dg <= 0 THEN 1
                    WHEN held <= 0 AND held - dg > 0 THEN -1
                    ELSE 0 END AS ds
        FROM system_held{boundaries}
    ),
    per_group AS (
        SELECT grp, t, SUM(dg) AS dg, SUM(dm) AS dm, SUM(df) AS df, SUM(ds) AS ds
        FROM system_changes GROUP BY grp, t
    ),
    levels AS (
        SELECT grp, t,
               LEAD(t) OVER (PARTITION BY grp ORDER BY t) AS t_next,
               SUM(dg) OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS gpus,
               SUM(dm) OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS mem,
               SUM(df) OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS tflops,
               SUM(ds) OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS systems
        FROM per_group
    )"""  # noqa: S608 - table names from model metadata, numbers and dates the code wrote


def _run(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        # No parameters: every value in the statement is a number or a date the code wrote.
        cursor.execute(sql)
        return cursor.fetchall()


def footprint_stretches(
    *,
    groups: Mapping[int, str],
    measure: str,
    above: float,
    min_systems: int,
    min_hours: float,
    now: datetime,
    scope: RecordScope | None = None,
) -> dict[str, Stretch]:
    """Per group, the stretch in which it held more than `above` (scheduler GPUs, or GB of
    accelerator memory) on at least `min_systems` systems at once, without a break, for more
    than `min_hours` hours; of several such stretches, the one with the highest peak.

    `groups` maps organisation ids to their group subject (organisations.groups). One query.
    """
    if measure not in MEASURES:
        raise ValueError(f"Measure the footprint in {' or '.join(MEASURES)}, not {measure!r}.")
    if not groups:
        return {}
    groups_sql, subjects = _group_numbers(groups)
    levels = _levels_sql(groups_sql, scope or RecordScope(), now, daily=False)
    islands = f""",
    flagged AS (
        SELECT grp, t, t_next, gpus, mem, tflops, systems,
               CASE WHEN {measure} > {float(above)!r} AND systems >= {int(min_systems)}
                    THEN 1 ELSE 0 END AS hit
        FROM levels WHERE t_next IS NOT NULL
    ),
    islands AS (
        SELECT grp, t, t_next, gpus, mem, tflops, systems, hit,
               SUM(1 - hit) OVER (
                   PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING
               ) AS island
        FROM flagged
    )
    SELECT grp, MIN(t), MAX(t_next), MAX(gpus), MAX(mem), MAX(tflops), MAX(systems)
    FROM islands WHERE hit = 1
    GROUP BY grp, island
    HAVING MAX(t_next) - MIN(t) > {float(min_hours) * 3600!r}
    """  # noqa: S608 - numbers the code wrote
    best: dict[str, Stretch] = {}
    for grp, start, end, gpus, memory, tflops, systems in _run(levels + islands):
        stretch = Stretch(
            group=subjects[grp],
            start=_from_seconds(start),
            end=_from_seconds(end),
            peak_gpus=int(gpus),
            peak_memory_gb=float(memory),
            peak_tflops=float(tflops),
            peak_systems=int(systems),
        )
        held = stretch.peak_gpus if measure == GPUS else stretch.peak_memory_gb
        current = best.get(stretch.group)
        if current is None or held > (
            current.peak_gpus if measure == GPUS else current.peak_memory_gb
        ):
            best[stretch.group] = stretch
    return best


def footprint_daily(
    *, groups: Mapping[int, str], now: datetime, scope: RecordScope | None = None
) -> dict[str, list[DayPeak]]:
    """Per group, the most it held at once on each day (UTC), oldest first: every day from
    its first job to its last, days without a job included. One query."""
    if not groups:
        return {}
    scope = scope or RecordScope()
    groups_sql, subjects = _group_numbers(groups)
    window = []
    if scope.since is not None:
        window.append(f"t >= {_seconds(scope.since) // DAY * DAY}")
    if scope.until is not None:
        window.append(f"t < {_seconds(scope.until)}")
    levels = _levels_sql(groups_sql, scope, now, daily=True)
    peaks = f"""
    SELECT grp, t / 86400 AS day, MAX(gpus), MAX(tflops), MAX(mem), MAX(systems)
    FROM levels WHERE {" AND ".join(["t_next IS NOT NULL", *window])}
    GROUP BY grp, t / 86400
    ORDER BY grp, day
    """  # noqa: S608 - numbers the code wrote
    daily: dict[str, list[DayPeak]] = {}
    for grp, day, gpus, tflops, memory, systems in _run(levels + peaks):
        daily.setdefault(subjects[grp], []).append(
            DayPeak(
                day=date(1970, 1, 1) + timedelta(days=int(day)),
                gpus=int(gpus),
                tflops=float(tflops),
                memory_gb=float(memory),
                systems=int(systems),
            )
        )
    return daily


def footprint_jobs(
    *,
    organisation_ids: Iterable[int],
    start: datetime,
    end: datetime,
    limit: int = 100,
    scope: RecordScope | None = None,
) -> tuple[list[dict], int, list[str]]:
    """The jobs of these organisations that ran at some time in [start, end): the evidence of a
    stretch, largest first (at most `limit`), how many there were in all and on which systems."""
    scope = scope or RecordScope()
    records = UsageRecord.objects.filter(
        allocation__organisation_id__in=list(organisation_ids),
        start__isnull=False,
        start__lt=end,
        gpus__gt=0,
    ).filter(Q(end__gt=start) | Q(end__isnull=True))
    records = scope.records(records)
    total = records.count()
    systems = sorted(set(records.order_by().values_list("cluster__name", flat=True).distinct()))
    rows = records.select_related(
        "cluster", "partition", "allocation__organisation", "allocation__partition"
    ).order_by("-gpus", "start", "pk")[:limit]
    jobs = []
    for record in rows:
        partition = record.partition or record.allocation.partition
        memory = partition.memory_gb_per_gpu
        jobs.append(
            {
                "system": record.cluster.name,
                "account": record.account,
                "job_id": record.job_id,
                "organisation": record.allocation.organisation.legal_name,
                "partition": partition.name,
                "gpus": record.gpus,
                "memory_gb": record.gpus * memory if memory else None,
                "start": record.start.isoformat(),
                "end": record.end.isoformat() if record.end else None,
            }
        )
    return jobs, total, systems
