"""Alerts and the large-run register over the API, for the staff who see them in the admin."""

import pytest

from compliance.models import Alert, LargeRunEntry
from systems.models import ThresholdPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(reference_data):
    return Alert.objects.create(
        level="gpai",
        scope="model",
        subject="north-13b",
        subject_key="north-13b@X",
        policy=ThresholdPolicy.objects.in_force(),
        value=1.2e23,
        threshold=1e23,
    )


@pytest.fixture
def entry(reference_data):
    from datetime import date

    return LargeRunEntry.objects.create(
        scope="model",
        subject="north-13b",
        subject_key="north-13b@X",
        category="gpai",
        basis="used",
        compute_flop=1.2e23,
        method="hardware",
        policy=ThresholdPolicy.objects.in_force(),
        first_crossed_on=date(2026, 3, 1),
    )


def test_operator_lists_and_acknowledges_alerts(api_client, alert, operator):
    api_client.force_authenticate(operator)
    listed = api_client.get("/api/v1/alerts/", {"acknowledged": "false"}).json()["results"]
    assert [a["id"] for a in listed] == [alert.pk]
    done = api_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"note": "Talked to them."})
    assert done.status_code == 200
    assert done.json()["acknowledged_by"] == operator.username
    assert api_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 409
    assert api_client.get("/api/v1/alerts/", {"acknowledged": "false"}).json()["results"] == []


@pytest.mark.parametrize("who", ["applicant", "reviewer"])
def test_applicants_and_reviewers_see_no_alerts(api_client, alert, who, request):
    api_client.force_authenticate(request.getfixturevalue(who))
    assert api_client.get("/api/v1/alerts/").status_code == 403
    assert api_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 403


def test_governance_reads_the_register(api_client, entry, governance_officer, operator):
    api_client.force_authenticate(governance_officer)
    rows = api_client.get("/api/v1/register/").json()["results"]
    assert rows[0]["subject"] == "north-13b" and rows[0]["compute_flop"] == 1.2e23
    api_client.force_authenticate(operator)  # the admin shows operators no register either
    assert api_client.get("/api/v1/register/").status_code == 403
