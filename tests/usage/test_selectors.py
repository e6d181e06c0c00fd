"""usage_report and the usage selectors: GPU-hours, compute, energy and CO2e from the records."""

import json

import pytest
from django.core.management import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation
from systems.models import Cluster
from tests.factories import days, make_allocation, make_cluster, make_organisation
from tests.usage.sacct import (
    FOX_FIELDS,
    SINCE,
    import_text,
    run_command,
    sacct_line,
    sacct_text,
    sample,
)
from usage.models import UsageRecord
from usage.selectors import (
    allocation_usage,
    allocations_usage,
    model_usage,
    models_usage,
    usage_overview,
    usage_series,
    usage_totals,
)

pytestmark = pytest.mark.django_db


def report(account: str, cluster: str) -> dict:
    out, _ = run_command(
        "usage_report", "--account", account, "--cluster", cluster, "--format", "json"
    )
    return json.loads(out)


def test_report_gpu_hours_equal_a_hand_count_of_the_fox_sample(reference_data):
    cluster = make_cluster()
    make_allocation(start=SINCE, cluster=cluster, account="ec313", gpu_hours=10)
    make_allocation(start=SINCE, cluster=cluster, account="ec35", gpu_hours=10)
    run_command(
        "import_usage",
        "--cluster",
        "fox",
        "--fields",
        FOX_FIELDS,
        str(sample("sonar-fox-sacct.txt")),
    )
    # Hand count of the allocation lines (ElapsedRaw x gres/gpu; step lines not counted):
    #   ec313: 234+256+128+160+155+40+29+148+29+25+23+45 = 1272 GPU-seconds, 12 jobs
    #   ec35:  1389+127+13 = 1529 GPU-seconds, 3 jobs (gres/gpu:rtx30=1,gres/gpu=1 is 1 GPU)
    ec313 = report("ec313", "fox")
    assert ec313["gpu_hours"] == pytest.approx(1272 / 3600)
    assert ec313["jobs"] == 12
    assert ec313["used_fraction"] == pytest.approx(1272 / 3600 / 10)
    assert ec313["first_start"] == "2024-11-13T12:02:56+00:00"  # 13:02:56 in Oslo
    assert ec313["last_end"] == "2024-11-13T12:10:31+00:00"
    ec35 = report("ec35", "fox")
    assert ec35["gpu_hours"] == pytest.approx(1529 / 3600) and ec35["jobs"] == 3


def test_report_has_the_contract_keys_and_figures(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm", gpu_hours=100)
    # two jobs of 4 GPUs x 2 h = 16 GPU-hours on an A100 partition (312 TFLOP/s, 400 W);
    # one carries a measured 20 MJ, the other is estimated at 8 GPU-h x 400 W = 3.2 kWh
    import_text(tmp_path, sacct_text(sacct_line("1", energy="20000000"), sacct_line("2")))
    data = report("acme_llm", "leonardo")
    for key in (
        "gpu_hours",
        "granted_gpu_hours",
        "used_fraction",
        "flop_estimate",
        "flop_upper_bound",
        "energy_kwh",
        "energy_source",
        "co2e_kg",
        "first_start",
        "last_end",
        "jobs",
    ):
        assert key in data
    assert data["gpu_hours"] == pytest.approx(16)
    assert data["granted_gpu_hours"] == 100
    assert data["used_fraction"] == pytest.approx(0.16)
    assert data["flop_upper_bound"] == pytest.approx(16 * 3600 * 312e12)
    assert data["flop_estimate"] == pytest.approx(16 * 3600 * 312e12 * 0.4)
    assert data["energy_source"] == "mixed"
    it_kwh = 20e6 / 3.6e6 + 3.2
    assert data["energy_kwh"] == pytest.approx(it_kwh)
    # CINECA seeds PUE 1.10 and 0.25 kg CO2e/kWh
    assert data["facility_energy_kwh"] == pytest.approx(it_kwh * 1.10)
    assert data["co2e_kg"] == pytest.approx(it_kwh * 1.10 * 0.25)


def test_energy_source_measured_and_estimated(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="measured")
    make_allocation(start=SINCE, cluster="leonardo", account="estimated")
    import_text(tmp_path, sacct_text(sacct_line("1", account="measured", energy="1000")))
    import_text(tmp_path, sacct_text(sacct_line("2", account="estimated")))
    assert report("measured", "leonardo")["energy_source"] == "measured"
    assert report("estimated", "leonardo")["energy_source"] == "estimated"


def test_reimport_changes_no_total(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    text = sacct_text(sacct_line("1"), sacct_line("2", state="RUNNING", end="Unknown", elapsed=5))
    import_text(tmp_path, text)
    before = report("acme_llm", "leonardo")
    import_text(tmp_path, text)
    assert report("acme_llm", "leonardo") == before


def test_report_attributes_usage_imported_before_the_allocation(tmp_path, reference_data):
    import_text(tmp_path, sacct_text(sacct_line("1", account="late")))
    # made another way than allocation_create, which would have attributed the usage itself
    leonardo = Cluster.objects.get(name="leonardo")
    Allocation.objects.create(
        organisation=make_organisation(),
        project="Project late",
        cluster=leonardo,
        partition=leonardo.partitions.get(),
        account="late",
        gpu_hours=1000,
        start=SINCE,
        end=days(90),
        state=Allocation.State.ACTIVE,
    )
    assert report("late", "leonardo")["jobs"] == 1


def test_unknown_account_or_cluster_is_an_error(reference_data):
    with pytest.raises(CommandError, match="No allocation with account 'nope'"):
        report("nope", "leonardo")
    with pytest.raises(CommandError, match="No allocation"):
        report("acme_llm", "atlantis")


def test_an_allocation_without_usage_reports_zeros(reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="idle")
    data = report("idle", "leonardo")
    assert (data["gpu_hours"], data["jobs"], data["first_start"]) == (0, 0, None)
    assert data["energy_source"] == "estimated"


def test_model_totals_span_allocations_on_different_clusters(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_a", model_name="acme-7b")
    make_allocation(start=SINCE, cluster="lumi", account="acme_b", model_name="acme-7b")
    make_allocation(start=SINCE, cluster="leonardo", account="other", model_name="other-1b")
    import_text(tmp_path, sacct_text(sacct_line("1", account="acme_a")))
    import_text(
        tmp_path,
        sacct_text(sacct_line("1", account="acme_b", partition="standard-g")),
        cluster="lumi",
    )
    totals = model_usage(model_name="acme-7b")
    assert totals.gpu_hours == pytest.approx(16)
    # 8 A100-hours at 312 TFLOP/s and 8 LUMI GCD-hours at 191.5 TFLOP/s
    assert totals.flop_upper_bound == pytest.approx(8 * 3600 * (312e12 + 191.5e12))
    per_model = models_usage()
    assert set(per_model) == {"acme-7b"}
    assert per_model["acme-7b"] == totals


def test_selectors_run_a_fixed_number_of_queries(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")

    def queries() -> int:
        allocations = Allocation.objects.all()
        with CaptureQueriesContext(connection) as captured:
            allocation_usage(allocation=allocations[0], utilisation=0.4)
            allocations_usage(allocations=allocations, utilisation=0.4)
            models_usage(utilisation=0.4)
            usage_series(records=UsageRecord.objects.all(), utilisation=0.4)
        return len(captured)

    import_text(tmp_path, sacct_text(sacct_line("1")))
    few = queries()
    import_text(tmp_path, sacct_text(*(sacct_line(str(n)) for n in range(2, 60))))
    assert queries() == few


def test_series_is_cumulative_per_day(tmp_path, reference_data):
    allocation = make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    import_text(
        tmp_path,
        sacct_text(
            sacct_line("1", end="2026-01-05T11:00:00"),
            sacct_line(
                "2",
                submit="2026-01-06T08:00:00",
                start="2026-01-06T09:00:00",
                end="2026-01-06T11:00:00",
            ),
            sacct_line(
                "3",
                submit="2026-01-06T08:00:00",
                start="2026-01-06T09:00:00",
                end="2026-01-06T11:00:00",
            ),
        ),
    )
    points = usage_series(records=UsageRecord.objects.filter(allocation=allocation))
    assert [(p.day.isoformat(), p.gpu_hours) for p in points] == [
        ("2026-01-05", 8.0),
        ("2026-01-06", 24.0),
    ]


def test_overview_has_the_figures_of_the_totals_and_the_series(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_a", model_name="acme-7b")
    make_allocation(start=SINCE, cluster="lumi", account="acme_b", model_name="acme-7b")
    import_text(
        tmp_path,
        sacct_text(
            sacct_line("1", account="acme_a", energy="5000000"),
            sacct_line(
                "2",
                account="acme_a",
                submit="2026-01-06T08:00:00",
                start="2026-01-06T09:00:00",
                end="2026-01-06T10:00:00",
            ),
        ),
    )
    import_text(
        tmp_path,
        sacct_text(sacct_line("3", account="acme_b", partition="standard-g")),
        cluster="lumi",
    )
    records = UsageRecord.objects.filter(allocation__model_key="acme-7b")
    overview = usage_overview(records=records, utilisation=0.4)
    totals = usage_totals(records=records, utilisation=0.4)
    assert overview.totals.jobs == totals.jobs == 3
    assert overview.totals.energy_source == totals.energy_source == "mixed"
    for name in ("gpu_seconds", "flop_estimate", "energy_kwh", "facility_energy_kwh", "co2e_kg"):
        assert getattr(overview.totals, name) == pytest.approx(getattr(totals, name)), name
    assert (overview.totals.first_start, overview.totals.last_end) == (
        totals.first_start,
        totals.last_end,
    )
    series = usage_series(records=records, utilisation=0.4)
    assert [(p.day, p.gpu_seconds) for p in overview.series] == [
        (p.day, p.gpu_seconds) for p in series
    ]
    assert [p.flop_estimate for p in overview.series] == pytest.approx(
        [p.flop_estimate for p in series]
    )


def test_overview_reads_the_records_once(tmp_path, reference_data):
    allocation = make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    import_text(tmp_path, sacct_text(*(sacct_line(str(n)) for n in range(1, 31))))
    with CaptureQueriesContext(connection) as captured:
        usage_overview(records=UsageRecord.objects.filter(allocation=allocation), utilisation=0.4)
    assert len(captured) == 1
