"""The monthly sums PostgreSQL keeps of the usage records, and the year read from them."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

import usage.importer.run
from systems.models import Partition
from tests.factories import make_allocation, make_usage_record
from tests.usage.sacct import SINCE, import_text, sacct_line, sacct_text, summary
from usage.importer.writers import _PostgresWriter
from usage.models import MonthlyUsage, UsageRecord
from usage.selectors import year_usage_sql


@pytest.fixture(autouse=True)
def _postgresql_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("the database keeps the monthly sums on PostgreSQL only")


def _kept(*fields: str) -> dict:
    """The monthly rows the database keeps, per (allocation, partition, "YYYY-MM"): `fields`,
    by default the records and the sums."""
    fields = fields or ("records", "gpu_seconds", "energy_joules", "unmetered_gpu_seconds")
    return {
        (m.allocation_id, m.partition_id, m.month.isoformat()[:7]): tuple(
            getattr(m, name) for name in fields
        )
        for m in MonthlyUsage.objects.all()
    }


def _peaks_kept() -> dict:
    return _kept("largest_gpus", "held_gpu_seconds")


def _per_month(add, zero: tuple) -> dict:
    """What the stored records with an allocation and a start come to per UTC month, worked
    out here: `add(so_far, record)` folds each record into its month's tuple."""
    sums: dict = {}
    for record in UsageRecord.objects.exclude(allocation=None).exclude(start=None):
        key = (
            record.allocation_id,
            record.partition_id,
            record.start.astimezone(UTC).strftime("%Y-%m"),
        )
        sums[key] = add(sums.get(key, zero), record)
    return sums


def _summed() -> dict:
    def add(so_far, record):
        records, gpu_seconds, joules, unmetered = so_far
        return (
            records + 1,
            gpu_seconds + record.gpu_seconds,
            joules + (record.energy_joules or 0),
            unmetered + (record.gpu_seconds if record.energy_joules is None else 0),
        )

    return _per_month(add, (0, 0, 0, 0))


def _peaks_summed() -> dict:
    """The most GPUs of one record and what the ended ones held from start to end."""

    def add(so_far, record):
        largest, held = so_far
        if record.end is not None:
            seconds = round(record.end.timestamp()) - round(record.start.timestamp())
            held += record.gpus * max(seconds, 0)
        return max(largest, record.gpus), held

    return _per_month(add, (0, 0))


def _assert_kept() -> None:
    assert _kept() == _summed()
    assert _peaks_kept() == _peaks_summed()


def _other_partition(allocation) -> Partition:
    """A second partition on the allocation's cluster, like its own."""
    other = Partition.objects.get(pk=allocation.partition_id)
    other.pk, other.name = None, f"{other.name}_other"
    other.save()
    return other


def test_the_months_follow_every_way_records_are_written_changed_and_deleted(reference_data):
    first = make_allocation(cluster="leonardo", account="first_llm")
    second = make_allocation(cluster="leonardo", account="second_llm")
    other = _other_partition(first)
    january = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    february = datetime(2026, 2, 1, 0, 30, tzinfo=UTC)
    kept = make_usage_record(allocation=first, gpu_seconds=100, start=january)
    make_usage_record(allocation=first, gpu_seconds=200, start=february, energy_joules=7_000)
    make_usage_record(allocation=first, gpu_seconds=300, start=february, partition=other)
    make_usage_record(allocation=first, gpu_seconds=400, start=None)
    unattributed = make_usage_record(allocation=first, gpu_seconds=500, start=february)
    UsageRecord.objects.filter(pk=unattributed.pk).update(allocation=None)
    UsageRecord.objects.bulk_create(
        UsageRecord(
            cluster=second.cluster,
            job_key=f"bulk-{n}",
            job_id=f"bulk-{n}",
            account=second.account,
            account_key=second.account_key,
            allocation=second,
            partition=second.partition,
            state="COMPLETED",
            start=january + timedelta(days=n),
            gpu_seconds=10 * n,
            energy_joules=n if n % 2 else None,
        )
        for n in range(1, 5)
    )
    _assert_kept()
    assert _kept()[(first.id, first.partition_id, "2026-01")] == (1, 100, 0, 100)
    assert _kept()[(second.id, second.partition_id, "2026-02")] == (4, 100, 4, 60)
    assert len(_kept()) == 4

    kept.gpu_seconds, kept.energy_joules = 150, 900
    kept.save()
    UsageRecord.objects.filter(allocation=second, gpu_seconds__gte=30).update(allocation=first)
    UsageRecord.objects.filter(pk=unattributed.pk).update(allocation=second)
    _assert_kept()
    assert _kept()[(first.id, first.partition_id, "2026-01")] == (1, 150, 900, 0)

    other.delete()  # its runs are kept, on no partition
    _assert_kept()
    assert (first.id, None, "2026-02") in _kept()

    UsageRecord.objects.filter(start__month=1).delete()
    _assert_kept()
    assert not [key for key in _kept() if key[2] == "2026-01"]

    UsageRecord.objects.filter(pk=unattributed.pk).update(start=january)
    _assert_kept()
    assert _kept()[(second.id, second.partition_id, "2026-01")] == (1, 500, 0, 500)

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {UsageRecord._meta.db_table}")
    assert _kept() == {}


def test_bulk_create_refuses_to_merge_runs_it_could_not_count(reference_data):
    allocation = make_allocation(cluster="leonardo", account="first_llm")
    run = UsageRecord(
        cluster=allocation.cluster,
        job_key="7",
        job_id="7",
        account=allocation.account,
        account_key=allocation.account_key,
        allocation=allocation,
        state="COMPLETED",
        start=datetime(2026, 3, 1, tzinfo=UTC),
        gpu_seconds=10,
    )
    for merge in ({"ignore_conflicts": True}, {"update_conflicts": True}):
        with pytest.raises(ValueError, match="import them"):
            UsageRecord.objects.bulk_create([run], **merge)
    assert not UsageRecord.objects.exists()
    assert _kept() == {}


@pytest.mark.parametrize(
    "read", ["in columns", "in columns, each stored run looked up", "line by line"]
)
def test_an_import_and_its_corrections_keep_the_months(reference_data, tmp_path, monkeypatch, read):
    if "looked up" in read:
        monkeypatch.setattr(_PostgresWriter, "JOIN_FACTOR", 0)
    if read == "line by line":
        monkeypatch.setattr(usage.importer.run, "_has_pyarrow", lambda: False)
    allocation = make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")

    def job(n: int, **fields) -> str:
        month = (n - 1) % 3 + 1
        times = {
            "submit": f"2026-0{month}-10T08:00:00",
            "start": f"2026-0{month}-10T09:00:00",
            "end": f"2026-0{month}-10T11:00:00",
        }
        return sacct_line(str(n), **{**times, **fields})

    def fields(n: int) -> dict:
        if n in (5, 11):
            return {"state": "RUNNING", "end": "Unknown"}
        return {"tres": "billing=16,cpu=16,gres/gpu=8,mem=64G,node=1"} if n == 2 else {}

    lines = [job(n, energy="5000" if n % 4 == 0 else "", **fields(n)) for n in range(1, 13)]
    counts = summary(import_text(tmp_path, sacct_text(*lines, sacct_line("99", account="x")))[0])
    assert counts["imported"] == 12
    _assert_kept()
    assert sum(records for records, *_ in _kept().values()) == 12
    january = (allocation.id, allocation.partition_id, "2026-01")
    assert _kept()[january] == (4, 4 * 4 * 7200, 5000, 3 * 4 * 7200)
    february = (allocation.id, allocation.partition_id, "2026-02")
    assert _peaks_kept()[february] == (8, (8 + 4) * 7200)

    # Jobs 1-3 ran longer than first accounted; job 7, requeued, started in April after all;
    # job 13 is new.
    corrected = [job(n, elapsed=9000) for n in (1, 2, 3)] + [
        job(7, start="2026-04-10T09:00:00", end="2026-04-10T11:00:00", elapsed=7300),
        job(13, energy="800"),
    ]
    counts = summary(import_text(tmp_path, sacct_text(*corrected))[0])
    assert (counts["updated"], counts["imported"]) == (4, 1)
    _assert_kept()
    assert _kept()[january] == (4, 4 * (9000 + 7200 + 7200 + 7200), 5800, 4 * (9000 + 7200))
    assert _peaks_kept()[february] == (4, (4 + 4) * 7200)
    april = (allocation.id, allocation.partition_id, "2026-04")
    assert _kept()[april] == (1, 4 * 7300, 0, 4 * 7300)


# The UTC times of records around the edges of 2026 and of the years beside it, for every zone.
_EDGES = [
    datetime(year, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    for year in (2026, 2027)
    for minutes in range(-16 * 60, 17 * 60, 59)
]
_ZONES = ["UTC", "Europe/Rome", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


@pytest.mark.parametrize("zone", _ZONES)
def test_the_year_of_the_site_zone_is_read_from_the_months_and_the_edges(reference_data, zone):
    first = make_allocation(cluster="leonardo", account="first_llm")
    second = make_allocation(cluster="leonardo", account="second_llm")
    other = _other_partition(first)
    for n, start in enumerate(_EDGES + [datetime(2026, 6, 1, tzinfo=UTC)]):
        make_usage_record(
            allocation=(first, second)[n % 2],
            partition=(other if n % 3 == 0 else (first, second)[n % 2].partition),
            gpu_seconds=1000 + n,
            energy_joules=None if n % 5 else 10 * n,
            start=start,
        )
    expected: Counter = Counter()
    for record in UsageRecord.objects.all():
        if record.start.astimezone(ZoneInfo(zone)).year == 2026:
            key = (record.allocation_id, record.partition_id)
            expected[key + ("gpu_seconds",)] += record.gpu_seconds
            expected[key + ("joules",)] += record.energy_joules or 0
            if record.energy_joules is None:
                expected[key + ("unmetered",)] += record.gpu_seconds
    assert expected

    with timezone.override(ZoneInfo(zone)):
        sql, params = year_usage_sql(2026)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    read: Counter = Counter()
    for allocation, partition, gpu_seconds, joules, unmetered in rows:
        read[(allocation, partition, "gpu_seconds")] += gpu_seconds
        read[(allocation, partition, "joules")] += joules or 0
        read[(allocation, partition, "unmetered")] += unmetered or 0
    assert +read == +expected
    assert len(rows) == 4


@pytest.mark.django_db(transaction=True)
def test_the_records_of_a_site_that_upgrades_are_summed_as_it_upgrades():
    from django.db.migrations.executor import MigrationExecutor

    allocation = make_allocation(cluster="leonardo", account="first_llm")
    july = datetime(2026, 7, 1, tzinfo=UTC)
    make_usage_record(
        allocation=allocation, gpus=2, gpu_seconds=7200, start=july, end=july + timedelta(hours=1)
    )
    before = ("usage", "0006_monthly_usage")
    MigrationExecutor(connection).migrate([before])
    try:
        stored = MigrationExecutor(connection).loader.project_state(before).apps
        old = stored.get_model("usage", "UsageRecord")
        for n, month in enumerate((1, 1, 2, 5)):
            old.objects.create(
                cluster_id=allocation.cluster_id,
                job_key=f"old-{n}",
                job_id=f"old-{n}",
                account=allocation.account,
                account_key=allocation.account_key,
                allocation_id=allocation.pk if n else None,
                partition_id=allocation.partition_id,
                state="COMPLETED",
                start=datetime(2026, month, 3, tzinfo=UTC),
                end=datetime(2026, month, 3, n, tzinfo=UTC) if n != 2 else None,
                gpus=4 * n,
                gpu_seconds=1000 * (n + 1),
                energy_joules=None if n % 2 else 50,
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("usage"))
    _assert_kept()
    assert _kept() == {
        (allocation.pk, allocation.partition_id, "2026-01"): (1, 2000, 0, 2000),
        (allocation.pk, allocation.partition_id, "2026-02"): (1, 3000, 50, 0),
        (allocation.pk, allocation.partition_id, "2026-05"): (1, 4000, 0, 4000),
        (allocation.pk, allocation.partition_id, "2026-07"): (1, 7200, 0, 7200),
    }
    assert _peaks_kept() == {
        (allocation.pk, allocation.partition_id, "2026-01"): (4, 4 * 3600),
        (allocation.pk, allocation.partition_id, "2026-02"): (8, 0),
        (allocation.pk, allocation.partition_id, "2026-05"): (12, 12 * 3 * 3600),
        (allocation.pk, allocation.partition_id, "2026-07"): (2, 2 * 3600),
    }


def test_a_month_looks_up_its_largest_run_again_only_when_that_run_goes(reference_data):
    allocation = make_allocation(cluster="leonardo", account="first_llm")
    day = datetime(2026, 3, 2, 8, tzinfo=UTC)
    month = (allocation.id, allocation.partition_id, "2026-03")

    def run(gpus: int, hours: int | None = 2):
        return make_usage_record(
            allocation=allocation,
            gpus=gpus,
            gpu_seconds=gpus * 3600,
            start=day,
            end=None if hours is None else day + timedelta(hours=hours),
        )

    largest, middle, small = run(8), run(4), run(2, hours=None)
    _assert_kept()
    assert _peaks_kept()[month] == (8, (8 + 4) * 2 * 3600)

    largest.delete()
    _assert_kept()
    assert _peaks_kept()[month] == (4, 4 * 2 * 3600)

    UsageRecord.objects.filter(pk=middle.pk).update(gpus=1)
    _assert_kept()
    assert _peaks_kept()[month] == (2, 2 * 3600)

    UsageRecord.objects.filter(pk=small.pk).update(gpus=6, end=day + timedelta(hours=1))
    _assert_kept()
    assert _peaks_kept()[month] == (6, 2 * 3600 + 6 * 3600)

    UsageRecord.objects.filter(pk=small.pk).update(start=day.replace(month=4))
    _assert_kept()
    assert _peaks_kept()[month] == (1, 2 * 3600)

    UsageRecord.objects.filter(pk=middle.pk).update(state="FAILED")
    _assert_kept()
    assert _peaks_kept()[month] == (1, 2 * 3600)


def test_the_used_compute_read_from_the_months_is_what_the_records_add_up_to(reference_data):
    from usage.selectors import allocations_used_compute

    first = make_allocation(cluster="leonardo", account="first_llm")
    second = make_allocation(cluster="leonardo", account="second_llm")
    other = _other_partition(first)
    other.memory_gb_per_gpu, other.peak_tflops = 141, 1979
    other.save()
    now = datetime(2026, 5, 1, tzinfo=UTC)
    start = datetime(2026, 3, 31, 22, tzinfo=UTC)
    runs = [
        # (allocation, partition, gpus, GPU-seconds, start, end)
        (first, first.partition, 4, 4 * 7200, start, start + timedelta(hours=2)),
        (
            first,
            other,
            16,
            16 * 3600,
            start + timedelta(days=3),
            start + timedelta(days=3, hours=1),
        ),
        (first, first.partition, 32, 32 * 60, start + timedelta(days=9), None),  # running
        (first, first.partition, 64, 640, None, None),  # never started, yet accounted
        (second, second.partition, 2, 2 * 3600, None, start),  # cancelled before it started
        (second, None, 8, 8 * 600, start, start + timedelta(minutes=10)),
    ]
    for allocation, partition, gpus, gpu_seconds, begun, ended in runs:
        make_usage_record(
            allocation=allocation,
            partition=partition,
            gpus=gpus,
            gpu_seconds=gpu_seconds,
            start=begun,
            end=ended,
        )

    used = allocations_used_compute(held_until=now)

    def peak(partition, allocation) -> float:
        return float((partition or allocation.partition).peak_tflops)

    for allocation in (first, second):
        mine = [run for run in runs if run[0] == allocation]
        held = sum(run[2] * ((run[5] or now) - run[4]).total_seconds() for run in mine if run[4])
        memory = max(
            run[2] * float((run[1] or allocation.partition).memory_gb_per_gpu) for run in mine
        )
        assert used[allocation.pk].gpu_seconds == sum(run[3] for run in mine)
        assert used[allocation.pk].peak_tflop_seconds == pytest.approx(
            sum(run[3] * peak(run[1], allocation) for run in mine)
        )
        assert used[allocation.pk].largest_job_memory_gb == memory
        assert used[allocation.pk].held_gpu_seconds == held
    assert used[first.pk].largest_job_memory_gb == 64 * float(first.partition.memory_gb_per_gpu)
    assert allocations_used_compute(held_until=now, held_by=[])[first.pk].held_gpu_seconds == 0
