"""The annual report and the register show split-run alerts and how many confidential reports
came in, never what a report says."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import MisuseReport
from compliance.monitoring import thresholds_check
from compliance.reports import annual_report
from compliance.services import report_close, report_reply, report_submit
from tests.compliance.factories import (
    REPORT_TEXT,
    allocation,
    job,
    job_with_flop,
    midnight,
    organisation,
    planned,
)
from tests.conftest import client_for

YEAR = timezone.now().year
TEXT = REPORT_TEXT


@pytest.fixture
def signals(reference_data, governance_officer):
    """A split run of two related companies that also crosses the GPAI line, one job above the
    memory level, a plan used past its declaration, and two confidential reports."""
    parent = organisation("DE-PARENT-1")
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1")
    leo = allocation(parent, "leonardo", "parent_llm")
    mn5 = allocation(child, "marenostrum5", "kid_llm")
    day = midnight(20)
    job(leo, 1000, day, day + timedelta(days=10))  # 2.4e5 GPU-hours: above 1e23 FLOP
    job(mn5, 600, day, day + timedelta(hours=30))
    big = allocation(organisation("DE-BIG-1"), "jupiter", "big_llm")
    job(big, 1100, day, day + timedelta(hours=2))
    planned_one = allocation(
        organisation("ES-PLAN-1"), "vega", "plan_llm", **planned("application #3", 1e20)
    )
    job_with_flop(planned_one, 2e20, days_ago=0)
    thresholds_check()
    first = report_submit(category="split_run", text=TEXT).report
    report_reply(report=first, officer=governance_officer, text="Received.")
    second = report_submit(category="misuse", text="Another concern.").report
    report_close(report=second, officer=governance_officer, outcome="insufficient")
    return first, second


def test_the_annual_report_counts_split_run_alerts_and_reports(signals):
    data = annual_report(year=YEAR).as_dict()

    split = data["split_runs"]
    assert split["footprint_alerts"] == 1
    assert split["memory_alerts"] == 2  # the group's memory at once, and the big job
    assert split["plan_deviations"] == 1
    levels = {(a["level"], a["subject"]) for a in split["alerts"]}
    assert ("footprint_gpus", "DE-PARENT-1") in levels
    assert ("plan_overrun", "plan_llm") in levels
    cited = {a["level"] for a in split["alerts"] if a["cited_in_register"]}
    assert "footprint_gpus" in cited
    assert data["confidential_reports"] == {
        "received": 2,
        "closed": 1,
        "acknowledged_within_7_days": 1,
    }
    assert TEXT not in json.dumps(data)


def test_anonymised_the_split_run_subjects_are_letters(signals):
    split = annual_report(year=YEAR, anonymise=True).as_dict()["split_runs"]
    subjects = {a["subject"] for a in split["alerts"]}
    assert "DE-PARENT-1" not in subjects and "plan_llm" not in subjects
    assert any(s.startswith("Group ") for s in subjects)


def test_the_annual_report_page_and_command_show_them(client, signals, governance_officer):
    from io import StringIO

    from django.core.management import call_command

    page = client_for(client, governance_officer).get(f"/governance/annual-report/?year={YEAR}")
    text = page.content.decode()
    assert "1 concurrent footprint alert " in text
    assert "2 received, 1 acknowledged within 7 days, 1 closed" in text
    assert TEXT not in text and "Another concern." not in text

    out = StringIO()
    call_command("annual_report", "--year", str(YEAR), stdout=out)
    assert "Split training runs: 1 footprint, 2 memory, 1 plan deviation alerts" in out.getvalue()
    assert "Confidential reports: 2 received" in out.getvalue()
    assert MisuseReport.objects.count() == 2


def test_the_register_csv_lists_the_alerts_an_entry_cites(client, signals, governance_officer):
    response = client_for(client, governance_officer).get("/governance/register.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    group = next(r for r in rows if r["scope"] == "organisation" and r["category"] == "gpai")
    assert "footprint_gpus organisation DE-PARENT-1" in group["cited_alerts"]
