"""Benchmark the concurrent footprint: one organisation group with 100,000 jobs on four systems.

    python -m bench.footprint [--jobs N] [--days D] [--runs R] [--keep]

With DATABASE_URL pointing at PostgreSQL, the database named there is created fresh, migrated and
dropped afterwards (`--keep` keeps it); without it, a fresh SQLite file in a temporary directory.
The jobs are written by one INSERT ... SELECT over a counter, not row by row. Then the sweep the
threshold check runs (`footprint_stretches`, GPUs and memory) and the daily peaks
(`footprint_daily`) are timed, each the best of R runs, on the clock and in the CPU time the
database spent (SQLite runs in this process; a PostgreSQL backend on this machine is read from
/proc): on a busy machine the clock also counts the wait for a core. Target: the check's sweep
under 1 s.
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

TARGET_SECONDS = 1.0
GROUP = "BENCH-PARENT-1"


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _seed(today: date) -> list:
    """Two related companies, an allocation each on four systems."""
    from allocations.models import Allocation
    from organisations.models import Organisation
    from systems.models import Partition
    from systems.reference import reference_data_seed

    reference_data_seed()
    parent = Organisation.objects.create(
        legal_name="Bench Parent", country="DE", registration_id=GROUP
    )
    child = Organisation.objects.create(
        legal_name="Bench Child",
        country="FI",
        registration_id="BENCH-CHILD-2",
        controlled_by_registration_id=GROUP,
    )
    allocations = []
    for n, cluster in enumerate(("leonardo", "marenostrum5", "lumi", "jupiter")):
        partition = Partition.objects.select_related("cluster").get(cluster__name=cluster)
        allocations.append(
            Allocation.objects.create(
                organisation=parent if n % 2 == 0 else child,
                project=f"Bench on {cluster}",
                cluster=partition.cluster,
                partition=partition,
                account=f"bench_{cluster}",
                gpu_hours=100_000_000,
                start=today - timedelta(days=365),
                end=today + timedelta(days=30),
                state=Allocation.State.ACTIVE,
            )
        )
    return allocations


def _generate(allocations: list, jobs: int, days: int, now: datetime) -> float:
    """Insert `jobs` usage records in one statement; returns the seconds it took.

    Job i runs on allocation i mod 4, starts at a spread-out second of the last `days` days,
    lasts 10 minutes to a day and holds 4 to 256 GPUs; one in a thousand is still running.
    """
    from django.db import connection, transaction

    from usage.models import UsageRecord

    q = connection.ops.quote_name
    if connection.vendor == "postgresql":

        def timestamp(seconds: str) -> str:
            return f"to_timestamp({seconds})"
    else:

        def timestamp(seconds: str) -> str:
            return f"datetime({seconds}, 'unixepoch')"

    first = int(now.timestamp()) - days * 86_400
    span = days * 86_400 - 86_400
    choices = " UNION ALL ".join(
        f"SELECT {n} AS k, {a.pk} AS allocation_id, {a.cluster_id} AS cluster_id, "
        f"{a.partition_id} AS partition_id, '{a.account}' AS account"
        for n, a in enumerate(allocations)
    )
    start = f"({first} + (n.i * 7919) % {span})"
    duration = "(600 + (n.i * 104729) % 85800)"
    gpus = "(4 * (1 + n.i % 64))"
    columns = [
        "cluster_id",
        "job_key",
        "account",
        "allocation_id",
        "partition_id",
        "job_id",
        "user",
        "partition_name",
        "job_name",
        "state",
        "running",
        "start",
        "end",
        "elapsed_seconds",
        "gpus",
        "nodes",
        "gpu_seconds",
        "updated_at",
    ]
    running = "n.i % 1000 = 0"
    sql = f"""
    INSERT INTO {q(UsageRecord._meta.db_table)} ({", ".join(q(c) for c in columns)})
    WITH RECURSIVE n(i) AS (
        SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < {int(jobs)}
    ),
    choice AS ({choices})
    SELECT c.cluster_id, CAST(n.i AS TEXT), c.account, c.allocation_id, c.partition_id,
           CAST(n.i AS TEXT), 'bench', '', 'train', CASE WHEN {running} THEN 'RUNNING'
           ELSE 'COMPLETED' END, {running},
           {timestamp(start)},
           CASE WHEN {running} THEN NULL ELSE {timestamp(f"{start} + {duration}")} END,
           {duration}, {gpus}, {gpus} / 4, {gpus} * {duration}, {timestamp(str(first))}
    FROM n JOIN choice c ON c.k = n.i % {len(allocations)}
    """
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {q(UsageRecord._meta.db_table)}")
    return time.perf_counter() - started


def _server_cpu() -> float | None:
    """CPU seconds the database server process serving this connection has used: the process
    itself on SQLite, the PostgreSQL backend when it runs on this machine, else None."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return time.process_time()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, the 14th and 15th fields of stat(5), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _best(runs: int, work) -> tuple[float, float | None, object]:
    """The shortest wall-clock time of `runs` runs, the least CPU time the database spent on
    one (wall-clock time on a busy machine includes waiting for a core) and the result."""
    wall, cpu, result = float("inf"), None, None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), _server_cpu()
        result = work()
        wall = min(wall, time.perf_counter() - started)
        ended_cpu = _server_cpu()
        if started_cpu is not None and ended_cpu is not None:
            spent = ended_cpu - started_cpu
            cpu = spent if cpu is None else min(cpu, spent)
    return wall, cpu, result


def _cpu(cpu: float | None) -> str:
    return f"{cpu:.3f} s" if cpu is not None else "n/a"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="period the jobs are spread over")
    parser.add_argument("--runs", type=int, default=5, help="time each step this often")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    options = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    maintenance = name = None
    with tempfile.TemporaryDirectory(prefix="hpcgate-footprint-") as work:
        if url.startswith(("postgres://", "postgresql://")):
            from bench.ingest import _database, _recreate

            name, maintenance = _database(url)
            _recreate(maintenance, name)
        elif url:
            print(f"bench: DATABASE_URL must be PostgreSQL or unset (got {urlsplit(url).scheme})")
            sys.exit(2)
        else:
            url = f"sqlite:///{work}/footprint.sqlite3"
        try:
            _run(url, options)
        finally:
            from django.db import connection

            connection.close()
            if maintenance and not options.keep:
                _recreate(maintenance, name, drop_only=True)


def _run(url: str, options) -> None:
    _setup_django(url)
    from django.db import connection

    from compliance.footprint import (
        GPUS,
        MEMORY,
        RecordScope,
        footprint_daily,
        footprint_stretches,
    )
    from organisations.groups import organisation_groups_current

    now = datetime.now(UTC)
    today = now.date()
    allocations = _seed(today)
    seconds = _generate(allocations, options.jobs, options.days, now)
    print(
        f"{connection.vendor}: {options.jobs:,} jobs of one group on 4 systems over "
        f"{options.days} days, written in {seconds:.2f} s"
    )
    groups = organisation_groups_current().subjects
    scope = RecordScope(today=today)
    took, cpu, found = _best(
        options.runs,
        lambda: footprint_stretches(
            groups=groups,
            levels={GPUS: 512, MEMORY: 32_768},
            min_systems=2,
            min_hours=24,
            now=now,
            scope=scope,
        ),
    )

    def verdict(seconds: float | None) -> str:
        return "n/a" if seconds is None else "met" if seconds < TARGET_SECONDS else "NOT met"

    print(
        f"check sweep        {took:6.3f} s wall, {_cpu(cpu)} database CPU  GPUs and memory; "
        f"target < 1 s: {verdict(took)} on the clock, {verdict(cpu)} in CPU"
    )
    for measure, stretches in sorted(found.items()):
        stretch = stretches.get(GROUP)
        print(
            f"  {measure:4}: stretch of {stretch.hours:,.0f} h, peak {stretch.peak_gpus:,} GPUs, "
            f"{stretch.peak_memory_gb:,.0f} GB on {stretch.peak_systems} systems"
            if stretch
            else f"  {measure:4}: no stretch"
        )
    took, cpu, daily = _best(
        options.runs, lambda: footprint_daily(groups=groups, now=now, scope=scope)
    )
    days = daily.get(GROUP, [])
    peak = max((day.gpus for day in days), default=0)
    print(
        f"daily peaks        {took:6.3f} s wall, {_cpu(cpu)} database CPU  {len(days)} days, "
        f"highest {peak:,} GPUs"
    )


if __name__ == "__main__":
    main()
