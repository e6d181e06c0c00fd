"""Benchmark hpcgate at a centre's scale: the threshold check, pages, commands and API lists.

    python -m bench.scale [--allocations N] [--records M] [--only-full] [--fresh]

Builds (or reuses) a PostgreSQL database with N allocations and M usage records (defaults
10,000 and 5,000,000), generated set-based in SQL, then times each operation and counts its
queries. It does the same at a tenth of the size first, so growth is visible. Databases are
named after their size (`hpcgate_scale_<N>_<M>`) on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/), kept between runs and reused; `--fresh` rebuilds them.
"""

import argparse
import io
import os
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
YEAR = 2026
# A fifth of the allocations cross the 75 % level in the "first run" case.
CROSSING_SHARE = 5
BIG_ALLOCATION_RECORDS = 200_000
MARKER_TABLE = "CREATE TABLE IF NOT EXISTS bench_scale_marker (allocations int, records int)"


@dataclass
class Figure:
    name: str
    seconds: float
    queries: int
    goal: str


def _fail(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(2)


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        _fail(f"DATABASE_URL must point at PostgreSQL (got {parts.scheme or url!r}).")
    return urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))


def _database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(("postgres", parts.netloc, f"/{name}", parts.query, ""))


def _ensure_database(server: str, name: str, fresh: bool) -> bool:
    """Create the database when missing (or when `fresh`); True when it is new."""
    import psycopg

    try:
        with psycopg.connect(server, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists and not fresh:
                return False
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    except psycopg.OperationalError as exc:
        _fail(f"no PostgreSQL answers at {server}: {str(exc).strip()}")
    return False


def _connect_django(url: str) -> None:
    """Point the (already set up) Django at another database."""
    import environ
    from django.db import connections

    settings_db = environ.Env.db_url_config(url)
    from django.conf import settings

    connections.close_all()
    settings.DATABASES["default"].update(settings_db)
    connections["default"].settings_dict.update(settings_db)


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _built(allocations: int, records: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(MARKER_TABLE)
        cursor.execute("SELECT allocations, records FROM bench_scale_marker")
        return cursor.fetchone() == (allocations, records)


def _build(allocations: int, records: int) -> None:
    """Reference data, N/2 organisations with two allocations each on the six partitions,
    a declared model per ten allocations, and M finished one-to-eight-GPU jobs spread over the
    year, one allocation holding BIG_ALLOCATION_RECORDS of them."""
    from django.db import connection

    from demo.reference import demo_call_seed
    from systems.reference import reference_data_seed

    started = time.perf_counter()
    reference_data_seed()
    demo_call_seed()
    organisations = max(allocations // 2, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO organisations_organisation
                (legal_name, country, registration_id, controlled_by_registration_id,
                 staff_headcount, annual_turnover_eur, balance_sheet_eur, website,
                 beneficial_owners, created_at)
            SELECT 'Bench AI ' || g, 'FI', 'BENCH' || g,
                   CASE WHEN g %% 50 = 0 THEN 'BENCH' || (g - 1) ELSE '' END,
                   20, 1000000, 1000000, '', '', now()
            FROM generate_series(1, %s) g
            """,
            [organisations],
        )
        cursor.execute(
            """
            INSERT INTO allocations_allocation
                (organisation_id, project, cluster_id, partition_id, account, account_key,
                 gpu_hours, start, "end", state, model_name, model_key, plan_reference,
                 created_at, updated_at)
            SELECT o.id, 'Bench project ' || g, p.cluster_id, p.id, 'bench_' || g, 'bench_' || g,
                   20000 + (g %% 7) * 5000, DATE %s, DATE %s, 'active',
                   CASE WHEN g %% 10 = 0 THEN 'bench-model-' || (g / 30) ELSE '' END,
                   CASE WHEN g %% 10 = 0 THEN 'bench-model-' || (g / 30) ELSE '' END,
                   '', now(), now()
            FROM generate_series(1, %s) g
            JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n
                  FROM organisations_organisation) o ON o.n = (g - 1) / 2 + 1
            JOIN (SELECT id, cluster_id, row_number() OVER (ORDER BY id) - 1 AS n
                  FROM systems_partition) p ON p.n = g %% 6
            """,
            [f"{YEAR}-01-01", f"{YEAR}-12-31", allocations],
        )
        big = min(BIG_ALLOCATION_RECORDS, records // 4)
        cursor.execute(
            """
            INSERT INTO usage_usagerecord
                (cluster_id, job_key, account, account_key, allocation_id, partition_id, job_id,
                 "user", partition_name, job_name, state, running, submit, start, "end",
                 elapsed_seconds, gpus, gpu_slices, nodes, gpu_seconds, energy_joules, updated_at)
            SELECT a.cluster_id, g || '@bench', a.account, a.account, a.id, a.partition_id,
                   g::text, 'user' || (g %% 97), p.name, 'train', 'COMPLETED', false,
                   t, t, t + make_interval(secs => 600 + g %% 3000),
                   600 + g %% 3000, 1 + g %% 8, 0, 1, (600 + g %% 3000) * (1 + g %% 8),
                   CASE WHEN g %% 3 = 0 THEN (600 + g %% 3000) * 300 ELSE NULL END, now()
            FROM generate_series(1, %s) g
            CROSS JOIN LATERAL (
                SELECT TIMESTAMPTZ %s
                       + make_interval(secs => (g::bigint * 6151) %% (360 * 86400)) AS t
            ) times
            JOIN (SELECT id, account, cluster_id, partition_id,
                         row_number() OVER (ORDER BY id) - 1 AS n
                  FROM allocations_allocation) a
              ON a.n = CASE WHEN g <= %s THEN 0 ELSE g %% %s END
            JOIN systems_partition p ON p.id = a.partition_id
            """,
            [records, f"{YEAR}-01-02 00:00:00+00", big, allocations],
        )
        cursor.execute("ANALYZE")
        cursor.execute(MARKER_TABLE)
        cursor.execute("DELETE FROM bench_scale_marker")
        cursor.execute("INSERT INTO bench_scale_marker VALUES (%s, %s)", [allocations, records])
    print(
        f"  built {allocations:,} allocations and {records:,} usage records "
        f"in {time.perf_counter() - started:.0f} s"
    )


def _crossings(allocations: int) -> None:
    """Push a fifth of the allocations past their whole grant with one large job each: every
    allocation level at once, and the exhaustion that blocks them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO usage_usagerecord
                (cluster_id, job_key, account, account_key, allocation_id, partition_id, job_id,
                 "user", partition_name, job_name, state, running, submit, start, "end",
                 elapsed_seconds, gpus, gpu_slices, nodes, gpu_seconds, updated_at)
            SELECT a.cluster_id, 'cross-' || a.id, a.account, a.account_key, a.id, a.partition_id,
                   'cross-' || a.id, 'u', '', 'big', 'COMPLETED', false,
                   TIMESTAMPTZ %s, TIMESTAMPTZ %s, TIMESTAMPTZ %s, 3600,
                   1, 0, 1, (a.gpu_hours * 3600 * 21) / 20, now()
            FROM allocations_allocation a
            WHERE a.id %% %s = 0
            ON CONFLICT DO NOTHING
            """,
            [f"{YEAR}-06-01 00:00:00+00"] * 3 + [CROSSING_SHARE],
        )


def _timed(name: str, goal: str, action) -> Figure:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
    return Figure(name, seconds, len(captured), goal)


def _page(client, url: str):
    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")

    return get


def _measure(allocations: int) -> list[Figure]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from allocations.models import Allocation
    from compliance.models import Alert, LargeRunEntry
    from compliance.monitoring import thresholds_check
    from usage.models import UsageRecord

    UsageRecord.objects.filter(job_key__startswith="cross-").delete()
    Alert.objects.all().delete()
    LargeRunEntry.objects.all().delete()
    Allocation.objects.update(exhausted_at=None)
    figures = [
        _timed("threshold check, first run (no alerts yet)", "", thresholds_check),
    ]
    _crossings(allocations)
    crossing = _timed(
        f"threshold check, a fifth crossing ({allocations // CROSSING_SHARE:,} crossings)",
        "<= 10 s, queries not growing",
        thresholds_check,
    )
    crossing.name += f": {Alert.objects.count():,} alerts in all"
    routine = _timed("threshold check, routine", "<= 5 s", thresholds_check)
    figures += [crossing, routine]

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    big = Allocation.objects.order_by("id").first()
    declared = Allocation.objects.exclude(model_name="").order_by("id")
    model = declared.values_list("model_name", flat=True)[0]
    cluster = big.cluster.name

    def export():
        call_command(
            "export_allocations",
            format="commands",
            cluster=cluster,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )

    for name, url in [
        ("admin usage records list", "/admin/usage/usagerecord/"),
        ("annual report page", f"/governance/annual-report/?year={YEAR}"),
        ("usage page of a model", f"/usage/models/{model}/"),
        ("usage page of the largest allocation", f"/usage/allocations/{big.pk}/"),
        ("admin scheduler exports list", "/admin/allocations/schedulerexport/"),
        ("API exports list", "/api/v1/exports/"),
        ("API allocations list", "/api/v1/allocations/"),
        ("allocations page", "/allocations/"),
        ("applications page", "/applications/"),
    ]:
        figures.append(_timed(name, "< 1 s", _page(client, url)))
    figures.append(
        _timed(
            "annual_report command",
            "< 1 s",
            lambda: call_command("annual_report", year=YEAR, stdout=io.StringIO()),
        )
    )
    figures.append(_timed(f"export_allocations --format commands ({cluster})", "< 1 s", export))
    return figures


def _run(server: str, allocations: int, records: int, fresh: bool) -> list[Figure]:
    name = f"hpcgate_scale_{allocations}_{records}"
    new = _ensure_database(server, name, fresh)
    _connect_django(_database_url(server, name))
    if not new:
        _migrate()
        if not _built(allocations, records):  # an earlier build stopped half-way
            _connect_django(_database_url(server, "postgres"))
            _ensure_database(server, name, fresh=True)
            _connect_django(_database_url(server, name))
            new = True
    if new:
        _migrate()
        _build(allocations, records)
    return _measure(allocations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--only-full", action="store_true", help="skip the tenth-size run")
    parser.add_argument("--fresh", action="store_true", help="rebuild the databases")
    args = parser.parse_args()
    server = _server_url()
    sizes = [(args.allocations, args.records)]
    if not args.only_full:
        sizes.insert(0, (max(args.allocations // 10, 10), max(args.records // 10, 1000)))
    _setup_django(_database_url(server, "postgres"))
    results = []
    for allocations, records in sizes:
        print(f"{allocations:,} allocations, {records:,} usage records")
        figures = _run(server, allocations, records, args.fresh)
        for figure in figures:
            print(
                f"  {figure.name:<72} {figure.seconds:7.2f} s {figure.queries:6d} queries"
                f"  {figure.goal}"
            )
        results.append(((allocations, records), figures))
    if len(results) == 2:
        print("growth from a tenth of the size to the full size (time, queries):")
        for small, full in zip(results[0][1], results[1][1], strict=True):
            ratio = full.seconds / small.seconds if small.seconds else float("inf")
            print(f"  {full.name:<72} x{ratio:5.1f}  {small.queries} -> {full.queries}")


if __name__ == "__main__":
    main()
