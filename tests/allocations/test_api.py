"""API: allocations (own for applicants, all for staff) and scheduler exports (operators)."""

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocations import services
from allocations.exports import export_create
from allocations.models import SchedulerExport
from allocations.slurm import parse_load_file
from systems.models import Cluster
from tests.conftest import client_for
from tests.factories import make_allocation, make_organisation

pytestmark = pytest.mark.django_db

ALLOCATIONS = "/api/v1/allocations/"
EXPORTS = "/api/v1/exports/"


@pytest.fixture
def allocation(reference_data, applicant):
    return make_allocation(organisation=make_organisation(owner=applicant), model_name="acme-7b")


@pytest.fixture
def rival_allocation(reference_data, other_applicant):
    return make_allocation(
        organisation=make_organisation(legal_name="Rival SL", owner=other_applicant),
        account="rival",
    )


def test_applicant_sees_only_own_organisations_allocations(
    api_client, applicant, allocation, rival_allocation
):
    api_client.force_authenticate(applicant)

    body = api_client.get(ALLOCATIONS).json()

    assert [row["account"] for row in body["results"]] == ["acme_llm"]
    row = body["results"][0]
    assert (row["gpu_hours"], row["gpu_minutes"], row["state"], row["model"]) == (
        50000, 3000000, "active", "acme-7b"
    )  # fmt: skip
    assert row["users"] == ["alice", "bob"]
    assert api_client.get(f"{ALLOCATIONS}{rival_allocation.pk}/").status_code == 404


@pytest.mark.parametrize("person", ["other_applicant", "outsider"])
def test_other_people_get_404_for_an_allocation(api_client, request, person, allocation):
    api_client.force_authenticate(request.getfixturevalue(person))

    assert api_client.get(f"{ALLOCATIONS}{allocation.pk}/").status_code == 404


def test_anonymous_gets_401(api_client, allocation):
    assert api_client.get(ALLOCATIONS).status_code == 401


def test_operator_sees_all_and_filters_by_cluster_and_state(
    api_client, operator, allocation, rival_allocation
):
    services.allocation_suspend(allocation=rival_allocation)
    make_allocation(account="leo", cluster="leonardo")
    api_client.force_authenticate(operator)

    def accounts(query=""):
        return [row["account"] for row in api_client.get(ALLOCATIONS + query).json()["results"]]

    assert accounts() == ["leo", "acme_llm", "rival"]
    assert accounts("?cluster=lumi") == ["acme_llm", "rival"]
    assert accounts("?state=suspended") == ["rival"]


def test_allocation_list_queries_do_not_grow_with_rows(
    api_client, operator, reference_data, django_assert_max_num_queries
):
    make_allocation(account="a_0")
    api_client.force_authenticate(operator)
    with CaptureQueriesContext(connection) as one_row:
        api_client.get(ALLOCATIONS)
    for number in range(1, 12):
        make_allocation(account=f"a_{number}")

    with django_assert_max_num_queries(len(one_row)):
        assert api_client.get(ALLOCATIONS).json()["count"] == 12


def test_operator_creates_an_export_and_gets_content_and_checksum(api_client, operator, allocation):
    api_client.force_authenticate(operator)

    response = api_client.post(EXPORTS, {"format": "slurm", "cluster": "lumi"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["checksum"] == hashlib.sha256(body["content"].encode()).hexdigest()
    assert list(parse_load_file(body["content"])["accounts"]) == ["acme_llm"]
    assert (body["cluster"], body["created_by"], body["allocations"]) == ("lumi", "ops", 1)
    history = api_client.get(EXPORTS).json()["results"]
    assert [row["id"] for row in history] == [body["id"]]
    assert api_client.get(f"{EXPORTS}{body['id']}/").json()["content"] == body["content"]


def test_json_export_over_the_api_needs_no_cluster(api_client, operator, allocation):
    api_client.force_authenticate(operator)

    response = api_client.post(EXPORTS, {"format": "json"}, format="json")

    assert response.status_code == 201
    assert response.json()["cluster"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"format": "commands"}, "cluster"), ({"format": "xml"}, "format")],
)
def test_invalid_export_requests_are_refused(api_client, operator, reference_data, payload, field):
    api_client.force_authenticate(operator)

    response = api_client.post(EXPORTS, payload, format="json")

    assert response.status_code == 400 and field in response.json()["errors"]
    assert not SchedulerExport.objects.exists()


def test_an_export_for_an_unknown_cluster_is_404(api_client, operator, reference_data):
    api_client.force_authenticate(operator)
    response = api_client.post(EXPORTS, {"format": "slurm", "cluster": "x"}, format="json")
    assert response.status_code == 404
    assert not SchedulerExport.objects.exists()


def test_exports_filter_by_format(api_client, operator, reference_data):
    api_client.force_authenticate(operator)
    api_client.post(EXPORTS, {"format": "csv"}, format="json")
    api_client.post(EXPORTS, {"format": "json"}, format="json")
    response = api_client.get(EXPORTS, {"format": "csv"})
    assert response.status_code == 200
    assert [e["format"] for e in response.json()["results"]] == ["csv"]


@pytest.mark.parametrize("person", ["applicant", "reviewer", "call_manager"])
def test_people_without_the_export_permission_cannot_export(
    api_client, request, person, allocation
):
    api_client.force_authenticate(request.getfixturevalue(person))

    response = api_client.post(EXPORTS, {"format": "slurm", "cluster": "lumi"}, format="json")

    assert response.status_code == 403
    assert not SchedulerExport.objects.exists()


def test_applicant_cannot_read_the_export_history(api_client, applicant, reference_data):
    api_client.force_authenticate(applicant)

    assert api_client.get(EXPORTS).status_code == 403


@pytest.fixture
def export(allocation, operator):
    return export_create(fmt="slurm", cluster=Cluster.objects.get(name="lumi"), actor=operator)


def _download(export):
    return reverse("admin:allocations_schedulerexport_download", args=[export.pk])


@pytest.mark.parametrize("person", ["applicant", "reviewer"])
def test_only_operators_read_exports_over_the_api_and_in_the_admin(
    api_client, client, request, person, export
):
    user = request.getfixturevalue(person)
    api_client.force_authenticate(user)
    for url in (EXPORTS, f"{EXPORTS}{export.pk}/"):
        response = api_client.get(url)
        assert response.status_code == 403, url
        body = response.content.decode()
        assert export.checksum not in body and "acme_llm" not in body, url

    download = client_for(client, user).get(_download(export))

    if user.is_staff:
        assert download.status_code == 403
    else:
        assert download.status_code == 302 and "/admin/login/" in download["Location"]
    assert "X-Checksum-SHA256" not in download and "acme_llm" not in download.content.decode()


def test_operator_reads_the_export_over_the_api_and_in_the_admin(
    api_client, client, operator, export
):
    assert "acme_llm" in export.content
    api_client.force_authenticate(operator)
    assert [row["checksum"] for row in api_client.get(EXPORTS).json()["results"]] == [
        export.checksum
    ]
    assert api_client.get(f"{EXPORTS}{export.pk}/").json()["content"] == export.content

    download = client_for(client, operator).get(_download(export))

    assert download.status_code == 200
    assert download.content.decode() == export.content
    assert download["X-Checksum-SHA256"] == export.checksum


def test_api_answers_json_503_when_the_database_does_not_answer(
    api_client, operator, allocation, monkeypatch
):
    from django.db import OperationalError

    from allocations import api

    def down(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(api, "allocations_visible_to", down)
    api_client.force_authenticate(operator)

    response = api_client.get(ALLOCATIONS)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "database does not answer" in response.json()["detail"]
