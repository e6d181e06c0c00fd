"""Input no view can handle is refused with 400 (or 413), never a 500: NUL characters in the
address or the query, bodies over the size limit, JSON that is not an object or nested too deep."""

import json

import pytest

from core.services import token_create


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/calls/a%00b/",
        "/usage/models/a%00b/",
        "/invitations/a%00b/",
        "/api/v1/applications/?organisation=1%00",
        "/api/v1/usage/imports/?cluster=lumi%00",
    ],
)
def test_a_nul_character_in_the_address_or_query_is_400(client, applicant, path):
    client.force_login(applicant)
    response = client.get(path)
    assert response.status_code == 400


@pytest.mark.django_db
def test_api_refusals_before_any_view_use_the_api_error_shape(api_client):
    response = api_client.get("/api/v1/calls/a%00b/")
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "errors"}


@pytest.mark.django_db
def test_usage_import_with_a_nul_in_the_cluster_field_is_400(api_client, operator, reference_data):
    _, key = token_create(user=operator, name="push")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("sacct.txt", b"JobIDRaw|Account\n", "text/plain")
    response = api_client.post(
        "/api/v1/usage/imports/", {"cluster": "lumi\x00", "file": upload}, format="multipart"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_json_array_to_the_token_endpoint_is_400(api_client):
    response = api_client.post("/api/v1/auth/token/", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["errors"]


@pytest.mark.django_db
def test_deeply_nested_json_to_the_api_is_400(api_client, applicant):
    api_client.force_authenticate(applicant)
    body = "[" * 100_000 + "]" * 100_000
    response = api_client.generic(
        "POST", "/api/v1/applications/", body, content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused_before_it_is_read(client, applicant, settings):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    client.force_login(applicant)
    response = client.generic(
        "POST",
        "/apply/",
        b"x" * 10,
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_the_usage_import_takes_larger_bodies_than_pages(client, settings):
    from core.middleware import RequestLimitsMiddleware

    assert RequestLimitsMiddleware.body_limit("/api/v1/usage/imports/") > (
        RequestLimitsMiddleware.body_limit("/apply/")
    )
    assert json.dumps({})  # the limits are plain numbers from the settings


@pytest.mark.django_db
def test_nul_characters_in_pushed_accounting_never_reach_the_database(
    api_client, operator, reference_data
):
    from usage.models import UsageRecord

    _, key = token_create(user=operator, name="push")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = (
        "JobIDRaw|JobID|Account|User|Partition|State|Submit|Start|End|ElapsedRaw|AllocTRES\n"
        "1|1|acme\x00|al\x00ice|standard-g|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:00:00|"
        "2026-01-01T01:00:00|3600|gres/gpu=1\n"
    )
    response = api_client.post(
        "/api/v1/usage/imports/?cluster=lumi", body.encode(), content_type="text/plain"
    )
    assert response.status_code < 500
    stored = [record.account + record.user for record in UsageRecord.objects.all()]
    assert all("\x00" not in text for text in stored)
