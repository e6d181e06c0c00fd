"""Benchmark hpcgate at a centre's scale: the threshold check, pages, commands and API lists.

    python -m bench.scale [--allocations N] [--records M] [--runs R] [--only-full] [--fresh]
                          [--prefix NAME]

Builds (or reuses) a PostgreSQL database with N allocations and M usage records (defaults
10,000 and 5,000,000), generated set-based in SQL, with 1,000 reviewed applications per access
mode of the call and a few stored exports of every allocation, then times each operation and
counts its queries, R times (min/median/max). It does the same at a tenth of the size first,
so growth is visible. Databases are named after their size (`<prefix>_<N>_<M>`, prefix
`hpcgate_scale`) on the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/),
kept between runs and reused; `--fresh` rebuilds them. Whatever a run changes (crossings,
alerts, register entries, exhaustion, exports) is undone before and after it, so a rerun
measures the same thing; the messages the check queues go to a temporary broker folder.
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
YEAR = 2026
# A fifth of the allocations pass their whole grant in the "first run" case; a few others
# (FEW_CROSSINGS) in the run whose query count the large one must keep.
CROSSING_SHARE = 5
FEW_CROSSINGS = 10
BIG_ALLOCATION_RECORDS = 200_000
APPLICATIONS_PER_MODE = 1_000
STORED_EXPORTS = 12
MARKER_TABLE = "CREATE TABLE IF NOT EXISTS bench_scale_marker (allocations int, records int)"
EXTRAS_TABLE = "CREATE TABLE IF NOT EXISTS bench_scale_extras (applications int, exports int)"
PAGE_GOAL = 1.0


@dataclass
class Figure:
    """One operation measured `runs` times; `goal` in seconds (None: shown for reference)."""

    name: str
    goal: float | None
    seconds: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    # The name of the figure whose query count this one must not exceed.
    same_queries_as: str | None = None
    constant_queries: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


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
    from usage.models import MONTHLY_USAGE_COUNTED, monthly_usage_added_sql

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
            WITH inserted AS (
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
            RETURNING """
            + MONTHLY_USAGE_COUNTED
            + ")"
            + monthly_usage_added_sql("inserted"),
            [records, f"{YEAR}-01-02 00:00:00+00", big, allocations],
        )
        # A settled database, as a site's would be: the pages marked all-visible (index-only
        # scans) and their rows' commit status set, which the first reads would do otherwise.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(MARKER_TABLE)
        cursor.execute("DELETE FROM bench_scale_marker")
        cursor.execute("INSERT INTO bench_scale_marker VALUES (%s, %s)", [allocations, records])
    print(
        f"  built {allocations:,} allocations and {records:,} usage records "
        f"in {time.perf_counter() - started:.0f} s"
    )


def _extend() -> None:
    """What a database built by an older bench lacks: 1,000 applications per access mode of
    the call (reviewed, waitlisted or in review, with submitted reviews and their scores) for
    the ranking page, and STORED_EXPORTS stored exports of every allocation for the export
    lists. Added once; the extras table records it."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from allocations.exports import export_create
    from allocations.models import SchedulerExport
    from organisations.models import Organisation
    from systems.models import AccessMode, AccessModePartition
    from vetting.models import (
        Application,
        ApplicationResource,
        CriterionScore,
        Review,
        ReviewAssignment,
        RubricCriterion,
    )
    from vetting.services.review import rubric_ensure

    with connection.cursor() as cursor:
        cursor.execute(EXTRAS_TABLE)
        cursor.execute("SELECT applications, exports FROM bench_scale_extras")
        if cursor.fetchone() == (APPLICATIONS_PER_MODE, STORED_EXPORTS):
            return
    started = time.perf_counter()
    User = get_user_model()
    reviewers = [
        User.objects.get_or_create(
            username=f"bench-reviewer-{n}", defaults={"email": f"reviewer{n}@bench.invalid"}
        )[0]
        for n in range(3)
    ]
    organisations = list(Organisation.objects.order_by("id").values_list("id", flat=True)[:2000])
    states = [
        Application.State.REVIEWED,
        Application.State.REVIEWED,
        Application.State.WAITLISTED,
        Application.State.IN_REVIEW,
    ]
    base = datetime.now(UTC) - timedelta(days=30)
    for mode in AccessMode.objects.select_related("call").order_by("id"):
        have = Application.objects.filter(access_mode=mode, title__startswith="Bench ").count()
        if have >= APPLICATIONS_PER_MODE:
            continue
        rubric_ensure(mode.call)
        criteria = list(
            RubricCriterion.objects.filter(rubric__call=mode.call).select_related("rubric")
        )
        partitions = list(
            AccessModePartition.objects.filter(access_mode=mode).values_list(
                "partition_id", flat=True
            )
        )
        applications = Application.objects.bulk_create(
            Application(
                organisation_id=organisations[n % len(organisations)],
                call=mode.call,
                access_mode=mode,
                state=states[n % len(states)],
                submitted_at=base + timedelta(minutes=n),
                title=f"Bench {mode.pk}-{n}",
                abstract="A benchmark application.",
                model_name=f"bench-application-model-{n}",
            )
            for n in range(have, APPLICATIONS_PER_MODE)
        )
        ApplicationResource.objects.bulk_create(
            ApplicationResource(
                application=application,
                partition_id=partitions[n % len(partitions)],
                gpu_hours=1_000 + (n * 37) % 50_000,
            )
            for n, application in enumerate(applications)
        )
        assignments = ReviewAssignment.objects.bulk_create(
            ReviewAssignment(
                application=application,
                reviewer=reviewer,
                state=ReviewAssignment.State.SUBMITTED,
            )
            for application in applications
            if application.state != Application.State.IN_REVIEW
            for reviewer in reviewers[:2]
        )
        reviews = Review.objects.bulk_create(
            Review(
                assignment=assignment,
                recommendation=Review.Recommendation.APPROVE,
                submitted_at=base,
            )
            for assignment in assignments
        )
        CriterionScore.objects.bulk_create(
            CriterionScore(
                review=review,
                criterion=criterion,
                score=1 + (review.pk * 7 + criterion.pk) % criterion.rubric.scale_max,
            )
            for review in reviews
            for criterion in criteria
        )
    stored = SchedulerExport.objects.filter(format=SchedulerExport.Format.JSON, cluster=None)
    missing = STORED_EXPORTS - stored.count()
    if missing > 0:
        export = export_create(fmt=SchedulerExport.Format.JSON, cluster=None)
        copies = []
        for _ in range(missing - 1):
            copies.append(
                SchedulerExport(
                    **{
                        f.attname: getattr(export, f.attname)
                        for f in SchedulerExport._meta.concrete_fields
                        if not f.primary_key
                    }
                )
            )
        SchedulerExport.objects.bulk_create(copies)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("DELETE FROM bench_scale_extras")
        cursor.execute(
            "INSERT INTO bench_scale_extras VALUES (%s, %s)",
            [APPLICATIONS_PER_MODE, STORED_EXPORTS],
        )
    print(
        f"  added {APPLICATIONS_PER_MODE:,} applications per access mode and "
        f"{STORED_EXPORTS} stored exports in {time.perf_counter() - started:.0f} s"
    )


def _crossings(*, share: int, remainder: int, limit: int | None = None) -> int:
    """Push the allocations whose id is `remainder` modulo `share` (the first `limit` of them)
    past their whole grant with one large job each: every allocation level at once, and the
    exhaustion that blocks them. Returns how many."""
    from django.db import connection

    from usage.models import MONTHLY_USAGE_COUNTED, monthly_usage_added_sql

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH inserted AS (
            INSERT INTO usage_usagerecord
                (cluster_id, job_key, account, account_key, allocation_id, partition_id, job_id,
                 "user", partition_name, job_name, state, running, submit, start, "end",
                 elapsed_seconds, gpus, gpu_slices, nodes, gpu_seconds, updated_at)
            SELECT a.cluster_id, 'cross-' || a.id, a.account, a.account_key, a.id, a.partition_id,
                   'cross-' || a.id, 'u', '', 'big', 'COMPLETED', false,
                   TIMESTAMPTZ %s, TIMESTAMPTZ %s, TIMESTAMPTZ %s, 3600,
                   1, 0, 1, (a.gpu_hours * 3600 * 21) / 20, now()
            FROM (
                SELECT * FROM allocations_allocation
                WHERE id %% %s = %s ORDER BY id LIMIT %s
            ) a
            ON CONFLICT DO NOTHING
            RETURNING """
            + MONTHLY_USAGE_COUNTED
            + f"), added AS ({monthly_usage_added_sql('inserted')})"
            + " SELECT count(*) FROM inserted, added",
            [f"{YEAR}-06-01 00:00:00+00"] * 3 + [share, remainder, limit],
        )
        return cursor.fetchone()[0]


def _reset(since) -> None:
    """Back to the database as built: no crossing jobs, alerts, register entries, exhaustion,
    and none of the exports (or first-export marks) made since `since`."""
    from django.db import connection

    from allocations.models import Allocation, AllocationEvent, SchedulerExport
    from compliance.models import Alert, LargeRunEntry
    from usage.models import UsageRecord

    tables = [
        LargeRunEntry.alerts.through._meta.db_table,
        LargeRunEntry.allocations.through._meta.db_table,
        LargeRunEntry.history.model._meta.db_table,
        LargeRunEntry._meta.db_table,
        Alert._meta.db_table,
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - names from model metadata
    UsageRecord.objects.filter(job_key__startswith="cross-").delete()
    AllocationEvent.objects.filter(action__in=["exhausted", "exhausted_cleared"]).delete()
    Allocation.objects.filter(exhausted_at__isnull=False).update(exhausted_at=None)
    SchedulerExport.objects.filter(created_at__gte=since).delete()
    Allocation.objects.filter(first_exported_at__gte=since).update(first_exported_at=None)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {UsageRecord._meta.db_table}")


def _timed(action) -> tuple[float, int]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
    return seconds, len(captured)


def _page(client, url: str):
    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")

    return get


def _command(name: str, *args, **options):
    from django.core.management import call_command

    def run():
        with contextlib.redirect_stderr(io.StringIO()):
            call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO(), **options)

    return run


def _measure_once(allocations: int, figures: dict[str, Figure], since) -> None:
    """One run of every measurement, from the database as built, which it leaves as built."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from allocations.models import Allocation
    from compliance.monitoring import thresholds_check
    from systems.models import AccessMode
    from usage.models import UsageRecord

    def record(name: str, goal: float | None, action, **options) -> None:
        seconds, queries = _timed(action)
        figure = figures.setdefault(name, Figure(name, goal, **options))
        figure.seconds.append(seconds)
        figure.queries.append(queries)

    crossing = allocations // CROSSING_SHARE
    first = f"threshold check, first run with {FEW_CROSSINGS} crossings"
    _reset(since)
    try:
        record("threshold check, first run after the build", None, thresholds_check)
        record("threshold check, routine run", 5.0, thresholds_check)
        few = _crossings(share=CROSSING_SHARE, remainder=1, limit=FEW_CROSSINGS)
        if few != FEW_CROSSINGS:
            raise RuntimeError(f"{few} allocations crossed, not {FEW_CROSSINGS}")
        record(first, None, thresholds_check)
        crossed = _crossings(share=CROSSING_SHARE, remainder=0)
        record(
            "threshold check, first run with a fifth crossing",
            10.0,
            thresholds_check,
            same_queries_as=first,
        )
        if not figures[first].seconds[1:]:
            print(f"  {crossed:,} of {allocations:,} allocations crossed (goal {crossing:,})")
        record("threshold check, routine run after the crossings", 5.0, thresholds_check)

        admin, _ = get_user_model().objects.get_or_create(
            username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(admin)
        big = Allocation.objects.order_by("id").first()
        model = (
            Allocation.objects.exclude(model_name="")
            .order_by("id")
            .values_list("model_name", flat=True)[0]
        )
        cluster = big.cluster.name
        job = (
            UsageRecord.objects.filter(allocation=big)
            .order_by("id")
            .values_list("job_key", flat=True)[0]
            .split("@", 1)[0]
        )
        pages = [
            ("admin usage records list", "/admin/usage/usagerecord/"),
            ("admin usage records, a job number searched", f"/admin/usage/usagerecord/?q={job}"),
            ("annual report page", f"/governance/annual-report/?year={YEAR}"),
            ("usage page of a model", f"/usage/models/{model}/"),
            (
                "usage page of the largest allocation",
                f"/usage/allocations/{big.pk}/",
            ),
            *(
                (
                    f"ranking page, {mode.get_kind_display().lower()}",
                    f"/admin/vetting/ranking/{mode.pk}/",
                )
                for mode in AccessMode.objects.order_by("id")
            ),
            ("admin scheduler exports list", "/admin/allocations/schedulerexport/"),
            ("allocations page", "/allocations/"),
            ("applications page", "/applications/"),
            ("API exports list", "/api/v1/exports/"),
            ("API allocations list", "/api/v1/allocations/"),
            ("API applications list", "/api/v1/applications/"),
            ("API alerts list", "/api/v1/alerts/"),
            ("API register list", "/api/v1/register/"),
        ]
        for name, url in pages:
            record(name, PAGE_GOAL, _page(client, url))
        record("annual_report command", PAGE_GOAL, _command("annual_report", year=YEAR))
        record(
            "export_allocations --format json (every allocation)",
            PAGE_GOAL,
            _command("export_allocations", format="json"),
        )
        record(
            f"export_allocations --format commands --cluster {cluster}",
            PAGE_GOAL,
            _command("export_allocations", format="commands", cluster=cluster),
        )
    finally:
        _reset(since)


def _measure(allocations: int, runs: int) -> list[Figure]:
    from django.utils import timezone

    since = timezone.now()
    figures: dict[str, Figure] = {}
    for _ in range(runs):
        _measure_once(allocations, figures, since)
    return list(figures.values())


def _run(
    server: str, prefix: str, allocations: int, records: int, fresh: bool, runs: int
) -> list[Figure]:
    name = f"{prefix}_{allocations}_{records}"
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
    _extend()
    return _measure(allocations, runs)


def _mark(figure: Figure, by_name: dict[str, Figure]) -> str:
    if figure.goal is None:
        return ""
    ok = figure.median <= figure.goal
    if figure.same_queries_as is not None:
        ok = ok and max(figure.queries) <= max(by_name[figure.same_queries_as].queries)
    return "PASS" if ok else "MISS"


def _goal_text(figure: Figure) -> str:
    if figure.goal is None:
        return "(reference)"
    text = f"<= {figure.goal:g} s"
    if figure.same_queries_as is not None:
        text += ", queries <= with few"
    return text


def _queries_text(queries: list[int]) -> str:
    low, high = min(queries), max(queries)
    return f"{low}" if low == high else f"{low}-{high}"


def _print(figures: list[Figure], runs: int) -> None:
    by_name = {figure.name: figure for figure in figures}
    times = "min / median / max" if runs > 1 else "time"
    print(f"  {'':<64} {times:>24} {'queries':>9}  goal")
    for figure in figures:
        if runs > 1:
            seconds = (
                f"{min(figure.seconds):6.2f} {figure.median:6.2f} {max(figure.seconds):6.2f} s"
            )
        else:
            seconds = f"{figure.seconds[0]:6.2f} s"
        print(
            f"  {figure.name:<64} {seconds:>24} {_queries_text(figure.queries):>9}"
            f"  {_goal_text(figure):<32} {_mark(figure, by_name)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement")
    parser.add_argument("--prefix", default="hpcgate_scale", help="database name prefix")
    parser.add_argument("--only-full", action="store_true", help="skip the tenth-size run")
    parser.add_argument("--fresh", action="store_true", help="rebuild the databases")
    args = parser.parse_args()
    if args.runs < 1:
        _fail("--runs must be 1 or more.")
    server = _server_url()
    sizes = [(args.allocations, args.records)]
    if not args.only_full:
        sizes.insert(0, (max(args.allocations // 10, 10), max(args.records // 10, 1000)))
    # The check queues e-mails about the bench's alerts and exhausted allocations: into a
    # broker folder of its own, removed at the end, never one a worker reads.
    scratch = tempfile.TemporaryDirectory(prefix="hpcgate-scale-")
    os.environ["HPCGATE_VAR_DIR"] = scratch.name
    _setup_django(_database_url(server, "postgres"))
    with scratch:
        _report(server, args, sizes)


def _report(server: str, args, sizes: list[tuple[int, int]]) -> None:
    results = []
    for allocations, records in sizes:
        print(f"{allocations:,} allocations, {records:,} usage records, {args.runs} run(s)")
        figures = _run(server, args.prefix, allocations, records, args.fresh, args.runs)
        _print(figures, args.runs)
        results.append(figures)
    if len(results) == 2:
        print("growth from a tenth of the size to the full size (median time, queries):")
        small = {figure.name.split(" (")[0]: figure for figure in results[0]}
        for full in results[1]:
            before = small.get(full.name.split(" (")[0])
            if before is None:
                continue
            ratio = full.median / before.median if before.median else float("inf")
            grows = max(full.queries) > max(before.queries)
            constant = (
                ""
                if full.goal is None or full.same_queries_as
                else ("queries grow" if grows else "queries constant")
            )
            print(
                f"  {full.name:<64} x{ratio:5.1f}  "
                f"{_queries_text(before.queries)} -> {_queries_text(full.queries)}  {constant}"
            )


if __name__ == "__main__":
    main()
