"""Personal API tokens: several per user with names, stored as digests, expiring, listed and
revoked by their owner (page and API), and revoked by a password change."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import ApiToken, key_digest
from core.services import token_create
from tests.factories import PASSWORD


def _auth(api_client, key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api_client


@pytest.mark.django_db
def test_the_token_endpoint_gives_named_expiring_tokens_stored_as_digests(api_client, applicant):
    first = api_client.post(
        "/api/v1/auth/token/",
        {"username": "founder", "password": PASSWORD, "name": "nightly report", "days": 7},
        format="json",
    ).json()
    second = api_client.post(
        "/api/v1/auth/token/", {"username": "founder", "password": PASSWORD}
    ).json()
    assert first["token"] != second["token"]
    assert first["name"] == "nightly report"
    tokens = ApiToken.objects.filter(user=applicant)
    assert tokens.count() == 2
    stored = tokens.get(pk=first["id"])
    assert stored.key_digest == key_digest(first["token"])
    assert first["token"] not in {stored.key_digest, stored.key_start}
    assert stored.expires_at - timezone.now() < timedelta(days=7, minutes=1)
    assert _auth(api_client, first["token"]).get("/api/v1/applications/").status_code == 200


@pytest.mark.django_db
def test_an_expired_token_is_refused(api_client, applicant):
    token, key = token_create(user=applicant, name="old", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _auth(api_client, key).get("/api/v1/applications/")
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.django_db
def test_a_password_change_revokes_every_token(api_client, client, applicant):
    _, key = token_create(user=applicant, name="script")
    assert _auth(api_client, key).get("/api/v1/applications/").status_code == 200
    client.force_login(applicant)
    response = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": PASSWORD,
            "password1": "a-new-long-passphrase",
            "password2": "a-new-long-passphrase",
        },
    )
    assert response.status_code == 302
    assert _auth(api_client, key).get("/api/v1/applications/").status_code == 401
    assert ApiToken.objects.get(user=applicant).state != "active"


@pytest.mark.django_db
def test_owners_list_and_revoke_their_tokens_on_their_page(client, applicant, other_applicant):
    mine, _ = token_create(user=applicant, name="mine")
    theirs, _ = token_create(user=other_applicant, name="theirs")
    client.force_login(applicant)
    page = client.get("/accounts/tokens/").content.decode()
    assert "mine" in page and "theirs" not in page
    assert client.post(f"/accounts/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/tokens/{mine.pk}/revoke/").status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None


@pytest.mark.django_db
def test_the_tokens_page_shows_a_new_key_once(client, applicant):
    client.force_login(applicant)
    page = client.post("/accounts/tokens/", {"name": "ci", "days": 30}).content.decode()
    key = re.search(r"<code>(hgt_[^<]+)</code>", page).group(1)
    assert ApiToken.objects.get(user=applicant).key_digest == key_digest(key)
    assert key not in client.get("/accounts/tokens/").content.decode()


@pytest.mark.django_db
def test_owners_list_make_and_revoke_tokens_through_the_api(api_client, applicant, other_applicant):
    theirs, _ = token_create(user=other_applicant, name="theirs")
    _, key = token_create(user=applicant, name="first")
    _auth(api_client, key)
    made = api_client.post("/api/v1/auth/tokens/", {"name": "second", "days": 3}, format="json")
    assert made.status_code == 201
    names = [t["name"] for t in api_client.get("/api/v1/auth/tokens/").json()["results"]]
    assert sorted(names) == ["first", "second"]
    assert api_client.delete(f"/api/v1/auth/tokens/{theirs.pk}/").status_code == 404
    assert api_client.delete(f"/api/v1/auth/tokens/{made.json()['id']}/").status_code == 204
    assert _auth(api_client, made.json()["token"]).get("/api/v1/auth/tokens/").status_code == 401


@pytest.mark.django_db
def test_a_token_cannot_outlive_the_site_maximum(api_client, applicant, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    response = api_client.post(
        "/api/v1/auth/token/",
        {"username": "founder", "password": PASSWORD, "days": 31},
        format="json",
    )
    assert response.status_code == 400
    assert "days" in response.json()["errors"]
