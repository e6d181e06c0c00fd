"""Applicant usage pages: owners and staff see them, everyone else gets 404."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_allocation, make_organisation
from tests.usage.sacct import SINCE, import_text, sacct_line, sacct_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(reference_data, applicant, tmp_path):
    allocation = make_allocation(
        start=SINCE,
        cluster="leonardo",
        account="acme_llm",
        organisation=make_organisation(owner=applicant),
        gpu_hours=100,
        model_name="acme-7b",
    )
    import_text(
        tmp_path,
        sacct_text(
            sacct_line("1", energy="5000000"),
            sacct_line(
                "2",
                submit="2026-01-06T08:00:00",
                start="2026-01-06T09:00:00",
                end="2026-01-06T10:00:00",
            ),
        ),
    )
    return allocation


def pages(allocation):
    return [
        f"/usage/allocations/{allocation.pk}/",
        f"/usage/allocations/{allocation.pk}/annex-xi/",
        f"/usage/allocations/{allocation.pk}/annex-xi.json",
        "/usage/models/acme-7b/",
        "/usage/models/acme-7b/annex-xi/",
        "/usage/models/acme-7b/annex-xi.json",
    ]


def test_owner_sees_every_page(client, applicant, allocation):
    client.force_login(applicant)
    for url in pages(allocation):
        assert client.get(url).status_code == 200, url


def test_owner_page_shows_usage_charts_and_jobs(client, applicant, allocation):
    client.force_login(applicant)
    html = client.get(f"/usage/allocations/{allocation.pk}/").content.decode()
    assert "<svg" in html and "<polyline" in html
    assert "grant 100 GPU-hours" in html
    assert "16.0" in html  # two jobs of 4 GPUs x 7,200 s (ElapsedRaw)
    assert "measured" in html and "mixed" in html


@pytest.mark.parametrize("who", ["other_applicant", "outsider"])
def test_others_get_404(client, allocation, who, request):
    client.force_login(request.getfixturevalue(who))
    for url in pages(allocation):
        assert client.get(url).status_code == 404, url


def test_anonymous_is_sent_to_log_in(client, allocation):
    response = client.get(f"/usage/allocations/{allocation.pk}/")
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("who", ["operator", "call_manager", "governance_officer"])
def test_staff_with_view_allocation_see_the_pages(client, allocation, who, request):
    client.force_login(request.getfixturevalue(who))
    for url in pages(allocation):
        assert client.get(url).status_code == 200, url


def test_reviewer_without_view_allocation_gets_404(client, allocation, reviewer):
    client.force_login(reviewer)
    assert client.get(f"/usage/allocations/{allocation.pk}/").status_code == 404


def test_annex_xi_json_has_compute_time_and_energy(client, applicant, allocation):
    client.force_login(applicant)
    data = client.get(f"/usage/allocations/{allocation.pk}/annex-xi.json").json()
    # 16 A100-hours x 312 TFLOP/s x 0.4, to two significant figures
    assert data["training_compute_flop"] == pytest.approx(7.2e18)
    assert data["training_compute_upper_bound_flop"] == pytest.approx(1.8e19)
    assert data["energy_source"] == "mixed"
    assert data["training_time"]["jobs"] == 2
    assert data["gpu_hours"] == pytest.approx(16)


def test_unknown_model_is_404(client, applicant, allocation):
    client.force_login(applicant)
    assert client.get("/usage/models/nothing/").status_code == 404


def queries_before_and_after_jobs(client, url: str, tmp_path, *, jobs: int):
    """The queries of `url` before and after `jobs` one-hour jobs are imported, and the
    response after."""
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    lines = (
        sacct_line(
            str(n),
            submit=f"2026-01-{n % 27 + 1:02d}T08:00:00",
            start=f"2026-01-{n % 27 + 1:02d}T09:00:00",
            end=f"2026-01-{n % 27 + 1:02d}T10:00:00",
        )
        for n in range(10, 10 + jobs)
    )
    import_text(tmp_path, sacct_text(*lines))
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    return few, many, response


def test_page_query_count_does_not_grow_with_jobs(client, applicant, allocation, tmp_path):
    client.force_login(applicant)
    url = f"/usage/allocations/{allocation.pk}/"
    few, many, response = queries_before_and_after_jobs(client, url, tmp_path, jobs=80)
    assert response.status_code == 200
    assert len(many) == len(few)
    assert "Page 1 of 2" in response.content.decode()


def test_job_table_shows_cluster_name_and_gpu_hours(client, applicant, reference_data):
    from tests.conftest import client_for
    from usage.models import UsageRecord

    allocation = make_allocation(
        start=SINCE,
        cluster="vega",
        account="acme_small",
        organisation=make_organisation(owner=applicant),
    )
    UsageRecord.objects.create(
        cluster=allocation.cluster,
        job_key="77",
        job_id="77",
        account=allocation.account,
        allocation=allocation,
        state="COMPLETED",
        gpus=4,
        elapsed_seconds=9000,
        gpu_seconds=36000,
        energy_joules=36_000_000,
    )
    page = client_for(client, applicant).get(f"/usage/allocations/{allocation.pk}/").content
    row = page.decode().split("<td>77</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>vega</td>" in row
    assert '<td class="num">10.0</td>' in row  # GPU-hours, one decimal
    assert '10.0 <span class="muted">measured</span>' in row  # kWh, one decimal


def test_model_pages_show_only_the_own_organisations_allocations_of_a_shared_name(
    client, applicant, other_applicant, allocation, tmp_path
):
    """Another company declaring the same model name sees, and shows, nothing of the other."""
    make_allocation(
        start=SINCE,
        cluster="leonardo",
        account="rival_llm",
        organisation=make_organisation(owner=other_applicant, legal_name="Rival AI SL"),
        gpu_hours=5000,
        model_name="acme-7b",
    )
    import_text(
        tmp_path,
        sacct_text(
            sacct_line(
                "900", account="rival_llm", user="mallory", name="rival-pretrain", elapsed=36000
            )
        ),
    )

    client.force_login(applicant)
    page = client.get("/usage/models/acme-7b/").content.decode()
    assert "grant 100 GPU-hours" in page
    assert "rival-pretrain" not in page and "mallory" not in page
    data = client.get("/usage/models/acme-7b/annex-xi.json").json()
    assert [a["account"] for a in data["allocations"]] == ["acme_llm"]
    assert data["granted_gpu_hours"] == 100
    assert data["gpu_hours"] == pytest.approx(16)  # the rival's 40 GPU-hours are not counted
    assert data["training_time"]["jobs"] == 2
    assert data["training_compute_flop"] == pytest.approx(7.2e18)

    client.force_login(other_applicant)
    data = client.get("/usage/models/acme-7b/annex-xi.json").json()
    assert [a["account"] for a in data["allocations"]] == ["rival_llm"]
    assert (data["granted_gpu_hours"], data["training_time"]["jobs"]) == (5000, 1)
    assert data["gpu_hours"] == pytest.approx(40)


def test_usage_menu_page_lists_the_persons_allocations_with_their_use(client, reference_data):
    from allocations.models import Allocation
    from tests.conftest import client_for
    from tests.factories import make_allocation, make_organisation, make_usage_record, make_user

    owner, rival = make_user(), make_user()
    mine = make_allocation(organisation=make_organisation(owner=owner), account="mine_1")
    theirs = make_allocation(
        organisation=make_organisation(owner=rival, legal_name="Rival Oy"), account="theirs_1"
    )
    make_usage_record(allocation=mine, gpu_seconds=3600 * 5_000)
    make_usage_record(allocation=theirs, gpu_seconds=3600)
    client_for(client, owner)
    home = client.get("/").content.decode()
    assert 'href="/usage/"' in home
    page = client.get("/usage/").content.decode()
    assert "mine_1" in page and "theirs_1" not in page
    assert "5,000.0 of 50,000" in page and "10 %" in page
    assert f'href="/usage/allocations/{mine.pk}/"' in page
    assert Allocation.objects.count() == 2


def test_model_page_query_count_does_not_grow_with_jobs(client, applicant, allocation, tmp_path):
    client.force_login(applicant)
    url = "/usage/models/acme-7b/"
    few, many, response = queries_before_and_after_jobs(client, url, tmp_path, jobs=28)
    assert len(many) == len(few)
    html = response.content.decode()
    assert '<div class="value">30</div><div class="label">jobs' in html
    # the totals and the series are read together, and the job table is not counted apart
    assert sum('"usage_usagerecord"' in q["sql"] for q in many.captured_queries) == 2
