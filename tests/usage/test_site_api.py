"""The site agent's endpoints: pending changes and applied reports, its site token only."""

import pytest

from allocations import services
from allocations.models import SchedulerExport
from core.services import token_create
from tests.factories import make_allocation, make_site_token

pytestmark = pytest.mark.django_db

PENDING = "/api/v1/clusters/{}/pending-changes/"
APPLIED = "/api/v1/exports/{}/applied/"


@pytest.fixture
def lumi_key(reference_data):
    make_allocation(account="acme_llm", users=("alice",))
    return make_site_token(cluster="lumi")[1]


def as_site(client, key):
    client.credentials(HTTP_AUTHORIZATION=f"SiteToken {key}")
    return client


def test_the_agent_fetches_its_clusters_commands_and_reports_them_applied(api_client, lumi_key):
    client = as_site(api_client, lumi_key)

    response = client.get(PENDING.format("lumi"))

    assert response.status_code == 200, response.content
    body = response.json()
    export = body["export"]
    assert body["cluster"] == "lumi" and export["format"] == "commands"
    assert export["content"].startswith("#!/bin/sh\n")
    assert "sacctmgr -i add qos name=acme_llm Flags=NoDecay" in export["content"]
    applied = client.post(APPLIED.format(export["id"]), {"checksum": export["checksum"]})
    assert applied.status_code == 200, applied.content
    assert applied.json()["applied_by_token"] == "lumi agent"
    assert applied.json()["applied_at"] is not None
    assert client.get(PENDING.format("lumi")).json() == {"cluster": "lumi", "export": None}


def test_the_export_history_shows_when_and_by_which_token(api_client, operator, lumi_key):
    agent = as_site(api_client, lumi_key)
    export = agent.get(PENDING.format("lumi")).json()["export"]
    agent.post(APPLIED.format(export["id"]), {"checksum": export["checksum"]})
    api_client.credentials()
    api_client.force_authenticate(operator)

    [row] = api_client.get("/api/v1/exports/").json()["results"]

    assert row["for_site_agent"] is True
    assert row["applied_by_token"] == "lumi agent" and row["applied_at"]
    assert row["created_by"] is None


def test_another_clusters_token_gets_nothing(api_client, lumi_key):
    export = as_site(api_client, lumi_key).get(PENDING.format("lumi")).json()["export"]
    _, leonardo_key = make_site_token(cluster="leonardo", name="leonardo agent")
    client = as_site(api_client, leonardo_key)

    response = client.get(PENDING.format("lumi"))
    assert response.status_code == 403
    assert "leonardo only" in response.json()["detail"]
    response = client.post(APPLIED.format(export["id"]), {"checksum": export["checksum"]})
    assert response.status_code == 403
    assert not SchedulerExport.objects.filter(applied_at__isnull=False).exists()


def test_only_site_tokens_are_taken(api_client, client, operator, lumi_key):
    _, key = token_create(user=operator, name="operator")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get(PENDING.format("lumi")).status_code == 401
    api_client.credentials()
    assert api_client.get(PENDING.format("lumi")).status_code == 401
    client.force_login(operator)
    assert client.get(PENDING.format("lumi")).status_code in (401, 403)
    assert not SchedulerExport.objects.exists()


def test_a_revoked_token_is_refused(api_client, lumi_key):
    from usage.models import SiteToken

    SiteToken.objects.update(revoked_at="2026-01-01T00:00:00Z")

    assert as_site(api_client, lumi_key).get(PENDING.format("lumi")).status_code == 401


def test_a_wrong_checksum_is_a_400_and_records_nothing(api_client, lumi_key):
    client = as_site(api_client, lumi_key)
    export = client.get(PENDING.format("lumi")).json()["export"]

    response = client.post(APPLIED.format(export["id"]), {"checksum": "0" * 64})

    assert response.status_code == 400
    assert "not this export" in response.json()["errors"]["checksum"][0]
    assert client.post(APPLIED.format(export["id"]), {}).status_code == 400
    assert client.post(APPLIED.format(10_000), {"checksum": "x"}).status_code == 404


def test_an_operators_export_cannot_be_reported_by_the_agent(api_client, operator, lumi_key):
    from allocations.exports import export_create
    from systems.models import Cluster

    export = export_create(fmt="commands", cluster=Cluster.objects.get(name="lumi"))

    response = as_site(api_client, lumi_key).post(
        APPLIED.format(export.pk), {"checksum": export.checksum}
    )

    assert response.status_code == 403


def test_a_stale_report_is_a_409(api_client, lumi_key):
    from allocations.models import Allocation

    client = as_site(api_client, lumi_key)
    older = client.get(PENDING.format("lumi")).json()["export"]
    services.allocation_suspend(allocation=Allocation.objects.get())
    newer = client.get(PENDING.format("lumi")).json()["export"]
    client.post(APPLIED.format(newer["id"]), {"checksum": newer["checksum"]})

    response = client.post(APPLIED.format(older["id"]), {"checksum": older["checksum"]})

    assert response.status_code == 409
    assert "fetch the pending changes again" in response.json()["detail"]


def test_site_tokens_still_open_no_other_endpoint(api_client, lumi_key):
    client = as_site(api_client, lumi_key)

    assert client.get("/api/v1/exports/").status_code == 401
    assert (
        client.post("/api/v1/exports/", {"format": "commands", "cluster": "lumi"}).status_code
        == 401
    )
    assert client.get("/api/v1/allocations/").status_code == 401


def test_the_endpoints_are_in_the_openapi_schema_with_the_site_token(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path, method in [
        ("/api/v1/clusters/{cluster}/pending-changes/", "get"),
        ("/api/v1/exports/{id}/applied/", "post"),
    ]:
        assert schema["paths"][path][method]["security"] == [{"siteToken": []}]
