"""Footprint and memory alerts go the way of the compute alerts: e-mail, admin, register."""

from datetime import timedelta

import pytest
from django.core import mail

from compliance.models import Alert, LargeRunEntry
from compliance.monitoring import thresholds_check
from tests.compliance.factories import allocation, job, midnight, organisation
from tests.conftest import client_for


@pytest.fixture
def split_run(reference_data, applicant, other_applicant):
    parent = organisation("DE-PARENT-1", owner=applicant)
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1", owner=other_applicant)
    leo = allocation(parent, "leonardo", "parent_llm")
    mn5 = allocation(child, "marenostrum5", "kid_llm")
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48), job_name="pretrain-a")
    job(mn5, 600, day + timedelta(hours=12), day + timedelta(hours=42), job_name="pretrain-b")
    return leo, mn5


def test_footprint_alert_is_mailed_without_the_other_company_figures(
    split_run, applicant, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check()
    footprint = [m for m in mail.outbox if "footprint_gpus" in m.subject]
    to_owner = [m for m in footprint if m.to == [applicant.email]]
    assert len(to_owner) == 1
    assert "1,200 GPUs" not in to_owner[0].body
    assert "several organisations" in to_owner[0].body
    assert "spread over several systems or companies" in to_owner[0].body
    to_staff = [m for m in footprint if m.to == [operator.email]]
    assert "1,200 GPUs" in to_staff[0].body
    assert "512 GPUs" in to_staff[0].body


def test_the_alert_admin_shows_which_jobs_overlapped_on_which_systems(
    client, split_run, governance_officer
):
    thresholds_check()
    alert = Alert.objects.get(level="footprint_gpus")
    page = client_for(client, governance_officer).get(f"/admin/compliance/alert/{alert.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "leonardo" in text and "marenostrum5" in text
    assert "Company FI-CHILD-2" in text
    assert "30.0 hours" in text
    assert "1,200 GPUs" in text  # the value column


def test_governance_acknowledges_a_footprint_alert_like_any_other(
    client, split_run, governance_officer
):
    thresholds_check()
    alert = Alert.objects.get(level="footprint_gpus")
    done = client_for(client, governance_officer).post(
        "/admin/compliance/alert/",
        {
            "action": "acknowledge",
            "_selected_action": [alert.pk],
            "apply": "1",
            "note": "Asked both companies.",
        },
        follow=True,
    )
    assert "Acknowledged 1 alert(s)." in done.content.decode()


def test_a_register_entry_of_the_group_cites_its_footprint_alerts(split_run):
    leo, mn5 = split_run
    thresholds_check()
    # The group's compute then crosses the GPAI line: its new register entry cites them, and
    # the memory alert of the big job on one of its allocations.
    day = midnight(5)
    job(leo, 4000, day, day + timedelta(days=3))
    thresholds_check()
    entry = LargeRunEntry.objects.get(scope="organisation", category="gpai")
    assert sorted(entry.alerts.values_list("level", flat=True)) == [
        "footprint_gpus",
        "footprint_memory",
        "job_memory",
    ]


def test_a_footprint_alert_raised_later_is_cited_by_the_existing_entry(reference_data):
    parent = organisation("DE-PARENT-1")
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1")
    leo = allocation(parent, "leonardo", "parent_llm")
    mn5 = allocation(child, "marenostrum5", "kid_llm")
    old = midnight(25)
    job(leo, 1000, old, old + timedelta(days=10))  # 2.4e5 GPU-hours: above 1e23 FLOP
    thresholds_check()
    entry = LargeRunEntry.objects.get(scope="organisation", category="gpai")
    assert not entry.alerts.exists()
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))
    thresholds_check()
    assert entry.alerts.filter(level="footprint_gpus").exists()


def test_governance_can_cite_alerts_on_a_register_entry(client, split_run, governance_officer):
    leo, _ = split_run
    day = midnight(5)
    job(leo, 4000, day, day + timedelta(days=3))
    thresholds_check()
    entry = LargeRunEntry.objects.get(scope="organisation", category="gpai")
    page = client_for(client, governance_officer).get(
        f"/admin/compliance/largerunentry/{entry.pk}/change/"
    )
    assert 'name="alerts"' in page.content.decode()
