"""Usage reads over the API: the pages' figures per allocation and per declared model, the daily
series and the jobs paginated and filtered by date, and Annex XI as JSON; 404 for strangers."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_allocation, make_organisation, make_usage_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(applicant, reference_data):
    allocation = make_allocation(
        organisation=make_organisation(owner=applicant), model_name="Acme 7B"
    )
    for day in (1, 2, 3):
        start = datetime(2026, 3, day, 8, tzinfo=UTC)
        make_usage_record(
            allocation=allocation,
            gpu_seconds=3600 * day,
            start=start,
            end=start + timedelta(hours=day),
        )
    return allocation


def test_allocation_summary_series_and_jobs(api_client, allocation, applicant):
    api_client.force_authenticate(applicant)
    base = f"/api/v1/usage/allocations/{allocation.pk}/"
    summary = api_client.get(base).json()
    assert summary["totals"]["jobs"] == 3
    assert summary["totals"]["gpu_hours"] == pytest.approx(6)
    assert summary["totals"]["granted_gpu_hours"] == allocation.gpu_hours
    series = api_client.get(f"{base}series/").json()
    assert [p["gpu_hours"] for p in series["results"]] == pytest.approx([1, 3, 6])
    since = api_client.get(f"{base}series/", {"from": "2026-03-02"}).json()["results"]
    assert [p["day"] for p in since] == ["2026-03-02", "2026-03-03"]
    jobs = api_client.get(f"{base}jobs/", {"from": "2026-03-02", "to": "2026-03-02"}).json()
    assert jobs["count"] == 1 and jobs["results"][0]["gpu_seconds"] == 7200
    bad = api_client.get(f"{base}jobs/", {"from": "yesterday"})
    assert bad.status_code == 400 and "from" in bad.json()["errors"]


def test_annex_xi_json_is_the_pages_summary(api_client, client, allocation, applicant):
    api_client.force_authenticate(applicant)
    client.force_login(applicant)
    mine = api_client.get(f"/api/v1/usage/allocations/{allocation.pk}/annex-xi/").json()
    page = client.get(f"/usage/allocations/{allocation.pk}/annex-xi.json").json()
    mine.pop("generated_at"), page.pop("generated_at")
    assert mine == page


def test_model_reads_cover_the_visible_allocations(api_client, allocation, applicant):
    api_client.force_authenticate(applicant)
    summary = api_client.get("/api/v1/usage/models/", {"name": "acme   7b"}).json()
    assert [a["id"] for a in summary["allocations"]] == [allocation.pk]
    jobs = api_client.get("/api/v1/usage/models/jobs/", {"name": "Acme 7B"}).json()
    assert jobs["count"] == 3
    assert api_client.get("/api/v1/usage/models/annex-xi/", {"name": "Acme 7B"}).status_code == 200
    assert api_client.get("/api/v1/usage/models/series/").status_code == 400


def test_strangers_get_404(api_client, allocation, other_applicant):
    api_client.force_authenticate(other_applicant)
    for path in ("", "series/", "jobs/", "annex-xi/"):
        assert (
            api_client.get(f"/api/v1/usage/allocations/{allocation.pk}/{path}").status_code == 404
        )
    assert api_client.get("/api/v1/usage/models/", {"name": "Acme 7B"}).status_code == 404


def test_staff_who_view_allocations_read_usage(api_client, allocation, operator):
    api_client.force_authenticate(operator)
    assert api_client.get(f"/api/v1/usage/allocations/{allocation.pk}/").status_code == 200
