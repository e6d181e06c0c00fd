"""Benchmark the usage import on PostgreSQL: 1,000,000 sacct allocation lines, twice, against COPY.

    python -m bench.ingest [--jobs N] [--file sacct.txt] [--keep] [--runs N]

Uses DATABASE_URL when it points at PostgreSQL, else postgres://postgres@127.0.0.1:5432/
hpcgate_bench; the database named there is created fresh, migrated, and dropped afterwards
(`--keep` keeps it). Reports the first import, the re-import of the same file, and two COPYs of
the rows the import stored (exported beforehand, untimed): into a bare copy of the usage
table and into a copy with all its indexes and constraints; then the ratios and the peak
memory of the importer and its parsing process together (each page counted once, see
_SharedPeak; read in both imports done again, untimed) against the goals, each with PASS or
MISS. With `--runs N` the same file is imported in N fresh processes and databases, one after
the other, and the figures end with their min / median / max (PASS when the median meets the
goal).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hpcgate_bench"
# the goals, on the benchmark's own machine and in one run (its speed drifts)
GOAL_FIRST_INDEXED = 1.5  # first import / COPY into a copy of the usage table with its indexes
GOAL_FIRST_BARE = 4.0  # first import / COPY into a bare copy (no index, no key)
GOAL_AGAIN_BARE = 2.0  # re-import / COPY into a bare copy
GOAL_MB = 300.0


def _fail(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(2)


def _database(url: str) -> tuple[str, str]:
    """(name of the benchmark database, URL of the server's maintenance database)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        _fail(f"DATABASE_URL must point at PostgreSQL (got {parts.scheme or url!r}).")
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        _fail("DATABASE_URL must name a database of its own: it is created and dropped.")
    maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    return name, maintenance


def _recreate(maintenance: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    try:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _fail(f"no PostgreSQL answers at {maintenance}: {str(exc).strip()}")


def _peak_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its largest child (the parsing process
    the importer forks). Their sum is an upper bound: the two share pages after the fork."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, child / 1024  # KiB on Linux


class _SharedPeak:
    """The peak memory of this process and its children together, each page counted once:
    the sum of their proportional set sizes (a page that n processes share counts 1/n in
    each), read from /proc/<pid>/smaps_rollup every 50 ms while the block runs. None where
    Linux does not report it."""

    INTERVAL = 0.05

    def __init__(self) -> None:
        self.mb: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "_SharedPeak":
        if _proportional_kib(os.getpid()) is not None:
            self.mb = 0.0
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.mb is not None:
            self._done.set()
            self._thread.join()

    def _watch(self) -> None:
        while True:
            pids = [os.getpid(), *_children(os.getpid())]
            kib = sum(_proportional_kib(pid) or 0 for pid in pids)
            self.mb = max(self.mb, kib / 1024)
            if self._done.wait(self.INTERVAL):
                return


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:  # the thread has ended
            continue
    return found


def _proportional_kib(pid: int) -> int | None:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # not Linux, or the process has ended
        return None
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Migrated by a process of its own: the migrations' memory is no part of an import's.
    manage = Path(__file__).resolve().parents[1] / "manage.py"
    subprocess.run(
        [sys.executable, str(manage), "migrate", "--verbosity", "0", "--noinput"], check=True
    )
    import django

    django.setup()


def _seed():
    """Leonardo, as seeded, with an allocation for 190 of the generator's 200 accounts."""
    from datetime import date

    from allocations.models import Allocation
    from bench.generate import ACCOUNTS
    from organisations.models import Organisation
    from systems.models import Cluster
    from systems.reference import reference_data_seed

    reference_data_seed()
    cluster = Cluster.objects.get(name="leonardo")
    partition = cluster.partitions.get()
    organisation = Organisation.objects.create(
        legal_name="Bench AI", country="IT", registration_id="IT00000000000"
    )
    allocations = [
        Allocation(
            organisation=organisation,
            project=f"Bench {account}",
            cluster=cluster,
            partition=partition,
            account=account,
            account_key=account,
            gpu_hours=10_000_000,
            start=date(2026, 1, 1),
            end=date(2026, 12, 31),
            state="active",
        )
        for account in ACCOUNTS[:190]
    ]
    for allocation in allocations:
        allocation.usage_from, allocation.usage_until = allocation.window()
    Allocation.objects.bulk_create(allocations)
    return cluster


def _timed_import(cluster, path: Path):
    from django.db import connection

    from usage.importer import usage_import

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        run = usage_import(
            cluster=cluster, lines=handle, tz="UTC", source="command", filename=str(path)
        )
    return time.perf_counter() - started, run


def _peak_memory(cluster, path: Path) -> float:
    """Both imports once more, from an empty usage table, with their memory read (`_SharedPeak`)
    while they run: the peak in MB, each page counted once where Linux reports it, else the
    sum of the resident sizes. Not timed: reading the parsing process's page tables every
    50 ms slows it (by up to a quarter of the re-import when measured)."""
    from django.db import connection

    from usage.models import UsageRecord

    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{UsageRecord._meta.db_table}"')
    with _SharedPeak() as shared:
        _timed_import(cluster, path)  # the first import
        _timed_import(cluster, path)  # the re-import
    own, child = _peak_mb()
    resident = f"{own:.0f} MB importer + {child:.0f} MB parsing process"
    if shared.mb is None:
        peak = own + child
        print(f"peak memory       {peak:7.0f} MB resident ({resident}), pages they share")
        print("                  counted in both")
    else:
        peak = shared.mb
        print(f"peak memory       {peak:7.0f} MB, each page counted once (resident:")
        print(f"                  {resident}, pages they share counted in both)")
    return peak


def _export_rows(scratch: Path) -> tuple[list[str], int]:
    """The imported usage records as COPY text (not timed): what a bulk load of the resolved
    rows would send. Returns the column names and the number of rows."""
    from django.db import connection

    from usage.models import UsageRecord

    table = UsageRecord._meta.db_table
    columns = [field.column for field in UsageRecord._meta.concrete_fields]
    names = ", ".join(f'"{name}"' for name in columns)
    rows = 0
    with connection.cursor() as cursor, scratch.open("wb") as target:
        with cursor.cursor.copy(
            f'COPY (SELECT {names} FROM "{table}" ORDER BY id) TO STDOUT'
        ) as copy:
            for chunk in copy:
                target.write(chunk)
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        rows = cursor.fetchone()[0]
    return columns, rows


def _timed_copy(scratch: Path, columns: list[str], *, indexed: bool) -> float:
    """Time COPY of the exported rows into a fresh copy of the usage table: with its indexes
    and constraints (`LIKE ... INCLUDING ALL`), or bare (no index, no key)."""
    from django.db import connection

    from usage.models import UsageRecord

    table = UsageRecord._meta.db_table
    copy_of = "bench_indexed" if indexed else "bench_plain"
    like = "INCLUDING ALL" if indexed else "INCLUDING DEFAULTS"
    names = ", ".join(f'"{name}"' for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE {copy_of} (LIKE "{table}" {like})')
        cursor.execute("CHECKPOINT")  # both start without the import's dirty pages
        started = time.perf_counter()
        with (
            scratch.open("rb") as rows,
            cursor.cursor.copy(f"COPY {copy_of} ({names}) FROM STDIN") as copy,
        ):
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {copy_of}")
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="allocation lines")
    parser.add_argument("--file", type=Path, help="import this sacct file instead of generating")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--runs", type=int, default=1, help="repeat in fresh processes")
    parser.add_argument("--figures", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.runs > 1:
        _repeated(options)
        return

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name, maintenance = _database(url)
    _recreate(maintenance, name)
    try:
        with tempfile.TemporaryDirectory(prefix="hpcgate-bench-") as work:
            work = Path(work)
            _setup_django(url)
            cluster = _seed()
            path = _input_file(options, work)
            first, run = _timed_import(cluster, path)
            print(f"first import      {first:7.2f} s   {run.summary}", flush=True)
            again, rerun = _timed_import(cluster, path)
            print(f"re-import         {again:7.2f} s   {rerun.summary}", flush=True)
            peak = _peak_memory(cluster, path)
            columns, rows = _export_rows(work / "rows.copy")
            bare = _timed_copy(work / "rows.copy", columns, indexed=False)
            print(
                f"COPY, no indexes  {bare:7.2f} s   ({rows:,} stored rows, bare copy of the table)"
            )
            indexed = _timed_copy(work / "rows.copy", columns, indexed=True)
            print(f"COPY, indexed     {indexed:7.2f} s   (the same into a copy with its indexes)")
            from django.db import connection

            connection.close()
    finally:
        if not options.keep:
            _recreate(maintenance, name, drop_only=True)
    figures = {
        "first": first, "again": again, "bare": bare, "indexed": indexed, "peak": peak
    }  # fmt: skip
    if options.figures is not None:
        options.figures.write_text(json.dumps(figures))
    for label, value, goal, unit in _goals(figures):
        verdict = "PASS" if value <= goal else "MISS"
        print(f"{label:<42} {value:7.2f}{unit:<4} goal <= {goal:g}{unit}  {verdict}")


def _input_file(options, work: Path) -> Path:
    """The file given with --file, else one generated in `work` with --jobs allocation lines."""
    if options.file is not None:
        return options.file
    from bench.generate import write

    path = work / "sacct.txt"
    print(f"generating {options.jobs:,} jobs with their steps ...", flush=True)
    lines = write(str(path), options.jobs)
    print(f"  {lines:,} lines, {path.stat().st_size / 1e6:,.0f} MB", flush=True)
    return path


def _goals(figures: dict) -> list[tuple[str, float, float, str]]:
    first, again, bare = figures["first"], figures["again"], figures["bare"]
    return [
        ("first import / indexed COPY", first / figures["indexed"], GOAL_FIRST_INDEXED, "x"),
        ("first import / bare COPY", first / bare, GOAL_FIRST_BARE, "x"),
        ("re-import / bare COPY", again / bare, GOAL_AGAIN_BARE, "x"),
        ("peak memory (importer + parsing process)", figures["peak"], GOAL_MB, " MB"),
    ]


def _repeated(options) -> None:
    """`--runs N`: one file, N runs each in a process and a database of its own (peak memory
    is per process), then min / median / max of every figure."""
    with tempfile.TemporaryDirectory(prefix="hpcgate-bench-") as work:
        work = Path(work)
        path = _input_file(options, work)
        runs = []
        for number in range(1, options.runs + 1):
            print(f"run {number} of {options.runs}", flush=True)
            out = work / f"figures-{number}.json"
            command = [sys.executable, "-m", "bench.ingest", "--file", str(path)]
            subprocess.run([*command, "--figures", str(out)], check=True)
            runs.append(json.loads(out.read_text()))
    print(f"{options.runs} runs{'':<30} min / median / max")
    per_run = [_goals(figures) for figures in runs]
    for row, (label, _, goal, unit) in enumerate(per_run[0]):
        values = [goals[row][1] for goals in per_run]
        median = statistics.median(values)
        verdict = "PASS" if median <= goal else "MISS"
        print(
            f"{label:<42} {min(values):7.2f} {median:7.2f} {max(values):7.2f}{unit:<4}"
            f" goal <= {goal:g}{unit}  {verdict}"
        )


if __name__ == "__main__":
    main()
