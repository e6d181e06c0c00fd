"""What an organisation group held at the same time, across all systems: scheduler GPUs, peak
FLOP/s and accelerator memory, from the start and end of its jobs.

One sweep in SQL: every job adds its GPUs at its start and takes them back at its end (a
running job ends now); a running sum over those events, ordered by time, is what the group
held from each event to the next. A running sum per system, in the same pass, tells where the
group held anything, so the number of systems held at once comes out of it too. Nothing loops
over jobs in Python, and the number of queries does not grow with them.

Times are whole seconds since 1970 (UTC) inside the query, so that the same SQL runs on
SQLite (3.25 or newer, for window functions) and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max, Q

from allocations.models import Allocation
from systems.models import Partition
from usage.models import UsageRecord
from usage.selectors import epoch_sql, held_gpu_seconds_sql

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

    def peak(self, measure: str) -> float:
        return self.peak_gpus if measure == GPUS else self.peak_memory_gb


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

    def covers(self, allocation: Allocation) -> bool:
        """Whether the allocation's records count (see `records`)."""
        return (
            self.today is None
            or allocation.state in Allocation.LIVE_STATES
            or allocation.end >= self.recent
        )

    def records(self, records):
        """The usage records (a queryset) of the allocations in scope."""
        if self.today is None:
            return records
        return records.filter(
            Q(allocation__state__in=Allocation.LIVE_STATES) | Q(allocation__end__gte=self.recent)
        )


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


def _levels_sql(
    groups_sql: str,
    systems: list[int],
    scope: RecordScope,
    now: datetime,
    *,
    daily: bool,
    prune: tuple[int, str, str] | None = None,
    held_gpu_seconds: Mapping[int, int] | None = None,
) -> str:
    """The common part of every footprint query: `levels` holds, per group and event time `t`,
    what the group held from `t` until `t_next` (NULL after its last event; rows of events at
    the same time share their levels, all but the last lasting no time).

    One window pass over the events: running sums of GPUs, memory and TFLOP/s, and one of GPUs
    per system (`systems` are cluster ids), so that the systems held at once are counted
    without a second pass.

    With `prune` (a bucket width in seconds, a condition on a group's bucket over `gpus` and
    `mem`, the GPU-seconds and GB-seconds its jobs held in it, and a condition on `gpu_seconds`,
    all the GPU-seconds of a group), only the jobs of groups meeting the last, and of those
    only the jobs that overlap a bucket meeting the first or one next to it, take part in the
    sweep (footprint_stretches says why the stretches come out the same). That turns a sort of
    every job's start and end into grouped passes over the jobs and a sort of a few.
    `held_gpu_seconds` gives those GPU-seconds per organisation id (not empty; one missing
    held none); without it, one more grouped pass over the records sums them.
    """
    q = connection.ops.quote_name
    record = UsageRecord._meta.db_table
    allocation = Allocation._meta.db_table
    partition = Partition._meta.db_table
    live = ", ".join(f"'{state}'" for state in Allocation.LIVE_STATES)
    where = [f"r.{q('start')} IS NOT NULL", "r.gpus > 0"]
    if scope.today is not None:
        where.append(f"(a.state IN ({live}) OR a.{q('end')} >= '{scope.recent.isoformat()}')")
    window = []
    if scope.since is not None:
        window.append(f"e > {_seconds(scope.since)}")
    if scope.until is not None:
        window.append(f"s < {_seconds(scope.until)}")
    # Midnight rows (no change) split the held levels by day, for the daily peaks.
    days, boundaries = "", ""
    if daily:
        days = """,
    days(grp, d, last_day) AS (
        SELECT grp, MIN(s) / 86400 + 1, MAX(e) / 86400 FROM jobs GROUP BY grp
        UNION ALL
        SELECT grp, d + 1, last_day FROM days WHERE d < last_day
    )"""
        boundaries = """
        UNION ALL
        SELECT grp, NULL, d * 86400, 0, 0, 0 FROM days"""
    # The default frame (RANGE ... CURRENT ROW) takes in every event at the same time, so a job
    # ending when another starts never counts as overlapping it.
    over = "OVER (PARTITION BY grp ORDER BY t)"
    jobs = f"""jobs AS (
        SELECT * FROM records WHERE {" AND ".join(["e > s", *window])}
    )"""  # noqa: S608 - numbers the code wrote
    if prune is not None:
        width, busy, at_most = prune
        jobs = f"""spanned AS (
        SELECT * FROM records WHERE {" AND ".join(["e > s", *window])}
    ),
    later_buckets(grp, cluster_id, gpus, mem, s, e, k, last_k) AS (
        SELECT grp, cluster_id, gpus, mem, s, e, s / {width} + 1, (e - 1) / {width}
        FROM spanned WHERE (e - 1) / {width} > s / {width}
        UNION ALL
        SELECT grp, cluster_id, gpus, mem, s, e, k + 1, last_k FROM later_buckets
        WHERE k < last_k
    ),
    spans AS (
        SELECT grp, cluster_id, gpus, mem, s, e, s / {width} AS k FROM spanned
        UNION ALL
        SELECT grp, cluster_id, gpus, mem, s, e, k FROM later_buckets
    ),
    busy AS (
        SELECT grp, k FROM (
            SELECT grp, k,
                   CAST(gpus AS DOUBLE PRECISION) * held AS gpus,
                   CAST(mem AS DOUBLE PRECISION) * held AS mem
            FROM (
                SELECT grp, k, gpus, mem,
                       (CASE WHEN e < (k + 1) * {width} THEN e ELSE (k + 1) * {width} END)
                       - (CASE WHEN s > k * {width} THEN s ELSE k * {width} END) AS held
                FROM spans
            ) clipped
        ) held
        GROUP BY grp, k HAVING {busy}
    ),
    jobs AS (
        SELECT * FROM spanned j WHERE EXISTS (
            SELECT 1 FROM busy b
            WHERE b.grp = j.grp
              AND b.k BETWEEN j.s / {width} - 1 AND (j.e - 1) / {width} + 1
        )
    )"""  # noqa: S608 - numbers and conditions the code wrote
    held = "".join(
        f",\n               SUM(CASE WHEN cluster_id = {int(c)} THEN dg ELSE 0 END) {over} AS h{n}"
        for n, c in enumerate(systems)
    )
    count = " + ".join(f"CASE WHEN h{n} > 0 THEN 1 ELSE 0 END" for n in range(len(systems)))
    heavy = ""
    if prune is not None:
        if held_gpu_seconds is None:
            held_sql = f"""
        SELECT a.organisation_id, SUM({held_gpu_seconds_sql("r", now)}) AS gpu_seconds
        FROM {q(record)} r
        JOIN {q(allocation)} a ON a.id = r.allocation_id
        WHERE {" AND ".join(where[:2])}
        GROUP BY a.organisation_id"""  # noqa: S608 - table names from model metadata
        else:
            held_sql = "\n        VALUES " + ", ".join(
                f"({int(org)}, {int(seconds)})" for org, seconds in sorted(held_gpu_seconds.items())
            )
        # A group whose jobs held too little in all cannot hold a stretch (footprint_stretches).
        heavy = f"""
    org_held(organisation_id, gpu_seconds) AS ({held_sql}
    ),
    heavy AS (
        SELECT grp FROM (
            SELECT g.grp, SUM(h.gpu_seconds) AS gpu_seconds
            FROM org_held h JOIN grp g ON g.organisation_id = h.organisation_id
            GROUP BY g.grp
        ) group_totals
        WHERE {at_most}
    ),"""  # noqa: S608 - numbers and conditions the code wrote
        where.append("g.grp IN (SELECT grp FROM heavy)")
    return f"""
    WITH RECURSIVE
    grp(organisation_id, grp) AS (VALUES {groups_sql}),{heavy}
    records AS (
        SELECT g.grp AS grp,
               r.cluster_id AS cluster_id,
               {epoch_sql(f"r.{q('start')}")} AS s,
               COALESCE({epoch_sql(f"r.{q('end')}")}, {_seconds(now)}) AS e,
               r.gpus AS gpus,
               r.gpus * COALESCE(p.memory_gb_per_gpu, ap.memory_gb_per_gpu, 0) AS mem,
               CAST(r.gpus * COALESCE(p.peak_tflops, ap.peak_tflops, 0) AS DOUBLE PRECISION)
                   AS tflops
        FROM {q(record)} r
        JOIN {q(allocation)} a ON a.id = r.allocation_id
        JOIN grp g ON g.organisation_id = a.organisation_id
        JOIN {q(partition)} ap ON ap.id = a.partition_id
        LEFT JOIN {q(partition)} p ON p.id = r.partition_id
        WHERE {" AND ".join(where)}
    ),
    {jobs}{days},
    events AS (
        SELECT grp, cluster_id, s AS t, gpus AS dg, mem AS dm, tflops AS df FROM jobs
        UNION ALL
        SELECT grp, cluster_id, e, -gpus, -mem, -tflops FROM jobs{boundaries}
    ),
    sums AS (
        SELECT grp, t,
               LEAD(t) {over} AS t_next,
               SUM(dg) {over} AS gpus,
               SUM(dm) {over} AS mem,
               SUM(df) {over} AS tflops{held}
        FROM events
    ),
    levels AS (
        SELECT grp, t, t_next, gpus, mem, tflops, {count or "0"} AS systems FROM sums
    )"""  # noqa: S608 - table names from model metadata, numbers and dates the code wrote


def _systems(groups: Mapping[int, str]) -> list[int]:
    """The clusters the organisations hold allocations on: where their jobs can run."""
    return sorted(
        set(
            Allocation.objects.filter(organisation_id__in=list(groups)).values_list(
                "cluster_id", flat=True
            )
        )
    )


def _run(sql: str) -> list[tuple]:
    # No parameters: every value in the statement is a number or a date the code wrote.
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    with transaction.atomic(), connection.cursor() as cursor:
        # The sweep sorts every start and end: in memory rather than in temporary files.
        # Compiling this many expressions just in time costs seconds, more than running them.
        cursor.execute(
            "SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)"
        )
        cursor.execute(sql)
        return cursor.fetchall()


def footprint_stretches(
    *,
    groups: Mapping[int, str],
    levels: Mapping[str, float],
    min_systems: int,
    min_hours: float,
    now: datetime,
    scope: RecordScope | None = None,
    systems: Iterable[int] | None = None,
    held_gpu_seconds: Mapping[int, float] | None = None,
) -> dict[str, dict[str, Stretch]]:
    """Per measure in `levels` (GPUS: scheduler GPUs, MEMORY: GB of accelerator memory) and per
    group, the stretch in which the group held more than the level on at least `min_systems`
    systems at once, without a break, for more than `min_hours` hours; of several such
    stretches, the one with the highest peak of the measure.

    `groups` maps organisation ids to their group subject (organisations.groups); `systems`
    are the clusters of their allocations, looked up when not given. `held_gpu_seconds` are
    the GPU-seconds the jobs of each organisation held up to `now` (usage.selectors.
    held_gpu_seconds_sql, over all its records), summed in the sweep's query when not given.
    One query for the sweep, whatever the number of jobs.
    """
    unknown = set(levels) - set(MEASURES)
    if unknown:
        raise ValueError(f"Measure the footprint in {' or '.join(MEASURES)}, not {unknown}.")
    found: dict[str, dict[str, Stretch]] = {measure: {} for measure in levels}
    if not groups or not levels:
        return found
    if systems is None:
        systems = _systems(groups)
    measures = sorted(levels)
    # A stretch lasts more than min_hours, so it takes in a whole bucket of half that width,
    # in which the group held more than the level all the time: more than level x width in
    # GPU-seconds (or GB-seconds), in that bucket and so in all. Only the buckets that reach
    # that, and their neighbours, can hold a stretch, and every job that ran in them is in the
    # sweep, so there the levels are exact; elsewhere the sweep sees fewer jobs than ran and
    # can only miss stretches, never find one, and there are none to miss. Held above the
    # level for more than min_hours, and so for more than two widths, a group's jobs held more
    # than level x 2 x width GPU-seconds (or GB-seconds) in all: the sweep leaves out every
    # group whose jobs held less, whenever they ran.
    width = int(float(min_hours) * 3600 // 2)
    prune = None
    if width >= 1800:
        reached = " OR ".join(
            f"SUM({measure}) > {float(levels[measure]) * width!r}" for measure in measures
        )
        # GB-seconds are at most GPU-seconds x the largest memory of one GPU anywhere.
        partitions = connection.ops.quote_name(Partition._meta.db_table)
        largest = f"COALESCE((SELECT MAX(memory_gb_per_gpu) FROM {partitions}), 0)"  # noqa: S608
        per_gpu = {GPUS: "1", MEMORY: f"CAST({largest} AS DOUBLE PRECISION)"}
        at_most = " OR ".join(
            f"gpu_seconds * {per_gpu[measure]} > {float(levels[measure]) * 2 * width!r}"
            for measure in measures
        )
        prune = (width, reached, at_most)
        if held_gpu_seconds is not None:
            # The same test, here: the sweep's query then names only the groups it sweeps, and
            # the planner reads their jobs through the (allocation, start) index rather than
            # every record (it cannot tell how few groups a condition in the query keeps).
            most = Partition.objects.aggregate(most=Max("memory_gb_per_gpu"))["most"] or 0
            factor = {GPUS: 1.0, MEMORY: float(most)}
            totals: dict[str, int] = defaultdict(int)
            for org, subject in groups.items():
                totals[subject] += round(held_gpu_seconds.get(org, 0))
            groups = {
                org: subject
                for org, subject in groups.items()
                if any(
                    totals[subject] * factor[measure] > float(levels[measure]) * 2 * width
                    for measure in measures
                )
            }
            if not groups:
                return found
    groups_sql, subjects = _group_numbers(groups)
    base = _levels_sql(
        groups_sql,
        sorted(set(systems)),
        scope or RecordScope(),
        now,
        daily=False,
        prune=prune,
        held_gpu_seconds=None
        if held_gpu_seconds is None
        else {org: round(held_gpu_seconds.get(org, 0)) for org in groups},
    )
    hit = {
        measure: f"{measure} > {float(levels[measure])!r} AND systems >= {int(min_systems)}"
        for measure in measures
    }
    # Gaps and islands in one pass: along a stretch the time moves on exactly as much as the
    # held time adds up, so time minus held time so far names the stretch.
    keys = "".join(
        f""",
               CASE WHEN {hit[measure]} THEN 1 ELSE 0 END AS hit{n},
               t_next - CAST(SUM(CASE WHEN {hit[measure]} THEN t_next - t ELSE 0 END) OVER (
                   PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING
               ) AS BIGINT) AS key{n}"""
        for n, measure in enumerate(measures)
    )
    numbers = " UNION ALL ".join(f"SELECT {n} AS n" for n in range(len(measures)))
    hit_rows = " OR ".join(f"(m.n = {n} AND hit{n} = 1)" for n in range(len(measures)))
    key = "CASE m.n " + " ".join(f"WHEN {n} THEN key{n}" for n in range(len(measures))) + " END"
    stretches = f""",
    keyed AS (
        -- rows of events at the same time as later ones last no time and add nothing
        SELECT grp, t, t_next, gpus, mem, tflops, systems{keys}
        FROM levels WHERE t_next > t
    )
    SELECT m.n, grp, MIN(t), MAX(t_next), MAX(gpus), MAX(mem), MAX(tflops), MAX(systems)
    FROM keyed CROSS JOIN ({numbers}) m
    WHERE {hit_rows}
    GROUP BY m.n, grp, {key}
    HAVING MAX(t_next) - MIN(t) > {float(min_hours) * 3600!r}
    """  # noqa: S608 - numbers the code wrote
    for n, grp, start, end, gpus, memory, tflops, held in _run(base + stretches):
        measure = measures[n]
        stretch = Stretch(
            group=subjects[grp],
            start=_from_seconds(start),
            end=_from_seconds(end),
            peak_gpus=int(gpus),
            peak_memory_gb=float(memory),
            peak_tflops=float(tflops),
            peak_systems=int(held),
        )
        current = found[measure].get(stretch.group)
        if current is None or stretch.peak(measure) > current.peak(measure):
            found[measure][stretch.group] = stretch
    return found


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
    levels = _levels_sql(groups_sql, _systems(groups), scope, now, daily=True)
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
