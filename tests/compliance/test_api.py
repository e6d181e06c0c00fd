"""Alerts and the large-run register over the API, for the staff who see them in the admin."""

from datetime import UTC, timedelta, timezone

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


def test_alerts_are_filtered_by_the_instant_whatever_offset_it_is_written_with(
    api_client, alert, operator
):
    api_client.force_authenticate(operator)
    raised = alert.raised_at.astimezone(UTC)

    def listed(**query):
        response = api_client.get("/api/v1/alerts/", query)
        assert response.status_code == 200, response.content
        return [a["id"] for a in response.json()["results"]]

    # the same instant one second after the alert, written at +23:30 (beyond PostgreSQL's reach)
    later = (raised + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=23, minutes=30)))
    assert listed(raised_before=later.isoformat()) == [alert.pk]
    assert listed(raised_after=later.isoformat()) == []
    earlier = (raised - timedelta(seconds=1)).astimezone(timezone(-timedelta(hours=23)))
    assert listed(raised_after=earlier.isoformat()) == [alert.pk]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_an_instant_outside_the_calendar_once_in_utc_is_refused_with_a_reason(
    api_client, alert, operator, moment
):
    api_client.force_authenticate(operator)
    response = api_client.get("/api/v1/alerts/", {"raised_before": moment})
    assert response.status_code == 400
    assert "years 1 to 9999" in str(response.json())


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
