"""Benchmark the usage import on PostgreSQL: 1,000,000 sacct allocation lines, twice, against COPY.

    python -m bench.ingest [--jobs N] [--file sacct.txt] [--keep]

Uses DATABASE_URL when it points at PostgreSQL, else postgres://postgres@127.0.0.1:5432/
hpcgate_bench; the database named there is created fresh, migrated, and dropped afterwards
(`--keep` keeps it). Reports the first import, the re-import of the same file, a plain COPY of
the same parsed rows into a scratch table, the ratio import / COPY and the peak memory.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hpcgate_bench"
TARGET_SECONDS = 20.0
TARGET_RATIO = 3.0
TARGET_MB = 300.0


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


def _peak_mb() -> float:
    """Peak resident memory of this process plus that of its largest child (the parsing
    process the importer forks): an upper bound, as the two share pages after the fork."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + child) / 1024  # KiB on Linux


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


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
    from usage.importer import usage_import

    started = time.perf_counter()
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        run = usage_import(
            cluster=cluster, lines=handle, tz="UTC", source="command", filename=str(path)
        )
    return time.perf_counter() - started, run


def _timed_copy(path: Path, scratch: Path) -> float:
    """Parse the file into COPY text (not timed), then time COPY of it into a scratch table."""
    from django.db import connection

    from systems.models import Cluster
    from usage.accounting import JobRecord, parse_sacct
    from usage.importer import _BATCH_COLUMNS, _copy_data, _Places, _row

    places = _Places(Cluster.objects.get(name="leonardo"))

    with (
        path.open(encoding="utf-8", errors="replace", newline="") as source,
        scratch.open("wb") as target,
    ):
        rows = []
        for item in parse_sacct(source, tz=UTC):
            if type(item) is JobRecord:
                row = _row(item, places)
                if type(row) is tuple:
                    rows.append(row)
                    if len(rows) >= 10_000:
                        target.write(_copy_data(rows))
                        rows.clear()
        target.write(_copy_data(rows))
    columns = ", ".join(f'"{name}" {kind}' for name, kind in _BATCH_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_copy ({columns})")
        started = time.perf_counter()
        with scratch.open("rb") as rows, cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="allocation lines")
    parser.add_argument("--file", type=Path, help="import this sacct file instead of generating")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    options = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name, maintenance = _database(url)
    _recreate(maintenance, name)
    try:
        with tempfile.TemporaryDirectory(prefix="hpcgate-bench-") as work:
            work = Path(work)
            _setup_django(url)
            cluster = _seed()
            path = options.file
            if path is None:
                from bench.generate import write

                path = work / "sacct.txt"
                print(f"generating {options.jobs:,} jobs with their steps ...", flush=True)
                lines = write(str(path), options.jobs)
                print(f"  {lines:,} lines, {path.stat().st_size / 1e6:,.0f} MB", flush=True)
            first, run = _timed_import(cluster, path)
            print(f"first import   {first:7.2f} s   {run.summary}", flush=True)
            again, rerun = _timed_import(cluster, path)
            print(f"re-import      {again:7.2f} s   {rerun.summary}", flush=True)
            copy = _timed_copy(path, work / "rows.copy")
            print(f"plain COPY     {copy:7.2f} s   (same parsed rows, scratch table)")
            from django.db import connection

            connection.close()
    finally:
        if not options.keep:
            _recreate(maintenance, name, drop_only=True)
    ratio = first / copy if copy else float("inf")
    peak = _peak_mb()
    print(f"ratio import/COPY {ratio:5.2f}")
    print(f"peak memory    {peak:7.0f} MB   (importer + parsing process)")
    met = first <= TARGET_SECONDS and again <= TARGET_SECONDS and ratio <= TARGET_RATIO
    met = met and peak <= TARGET_MB
    print(
        "targets (import and re-import <= 20 s, <= 3x COPY, <= 300 MB): "
        + ("met" if met else "NOT met")
    )


if __name__ == "__main__":
    main()
