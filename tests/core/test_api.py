from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from systems.models import Call


@pytest.mark.django_db
def test_calls_are_public_and_drafts_stay_private(api_client, open_call):
    Call.objects.create(
        title="Draft call", slug="draft", opens_at=timezone.now() - timedelta(days=1)
    )
    response = api_client.get("/api/v1/calls/")
    assert response.status_code == 200
    slugs = [c["slug"] for c in response.json()["results"]]
    assert slugs == [open_call.slug]
    assert api_client.get("/api/v1/calls/draft/").status_code == 404


@pytest.mark.django_db
def test_call_shows_access_modes_with_eligible_partitions(api_client, open_call):
    call = api_client.get(f"/api/v1/calls/{open_call.slug}/").json()
    modes = {m["kind"]: m for m in call["access_modes"]}
    assert modes["large_scale"]["durations_months"] == [3, 6, 12]
    clusters = {p["cluster"] for p in modes["playground"]["partitions"]}
    assert clusters == {"lumi", "leonardo", "marenostrum5", "jupiter", "vega", "meluxina"}


@pytest.mark.django_db
def test_partitions_report_peak_per_scheduler_gpu(api_client, reference_data):
    rows = api_client.get("/api/v1/partitions/?cluster__name=lumi").json()["results"]
    assert len(rows) == 1
    assert rows[0]["peak_flops"] == pytest.approx(191.5e12)
    assert rows[0]["gpus_per_node"] == 8


@pytest.mark.django_db
def test_token_is_issued_for_valid_credentials_only(api_client, applicant):
    from tests.factories import PASSWORD

    bad = api_client.post("/api/v1/auth/token/", {"username": "founder", "password": "nope"})
    assert bad.status_code == 401
    assert bad["WWW-Authenticate"].startswith("Token")
    good = api_client.post("/api/v1/auth/token/", {"username": "founder", "password": PASSWORD})
    assert good.status_code == 200
    token = good.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/calls/").status_code == 200


@pytest.mark.django_db
def test_no_token_before_the_email_address_is_verified(api_client, applicant):
    from allauth.account.models import EmailAddress

    from tests.factories import PASSWORD

    EmailAddress.objects.filter(user=applicant).update(verified=False)
    response = api_client.post("/api/v1/auth/token/", {"username": "founder", "password": PASSWORD})
    assert response.status_code == 403
    assert "Verify your e-mail address" in response.json()["detail"]


@pytest.mark.django_db
def test_openapi_schema_validates(client):
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3" in out.getvalue()
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_api_docs_load_their_assets_from_this_site(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page
