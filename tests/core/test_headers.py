"""Headers every kind of page sends: a Content-Security-Policy without inline script or style,
Permissions-Policy, and no-store on anything answered to a logged-in caller."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from core.services import token_create

ROOT = Path(settings.BASE_DIR)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/", "/api/docs/"])
def test_public_pages_send_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_public_pages_for_anonymous_visitors_may_be_cached(client, open_call):
    assert "no-store" not in client.get("/").get("Cache-Control", "")


@pytest.mark.django_db
def test_pages_behind_log_in_are_never_stored(client, applicant):
    client.force_login(applicant)
    for path in ("/applications/", "/organisations/new/", "/", "/accounts/tokens/"):
        response = client.get(path)
        assert "no-store" in response["Cache-Control"], path
        assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_api_answers_to_a_token_are_never_stored(api_client, applicant):
    _, key = token_create(user=applicant, name="x")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api_client.get("/api/v1/applications/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_api_docs_load_their_script_from_a_file(client):
    page = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    script = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', page).group(1)
    response = client.get(script.replace("&amp;", "&"))
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.content.decode()


@pytest.mark.django_db
def test_oidc_providers_may_receive_log_in_forms(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [{"name": "IdP", "settings": {"server_url": "https://idp.example.org/realm"}}]
        }
    }
    policy = _policy(client.get("/"))
    assert policy["form-action"] == ["'self'", "https://idp.example.org"]


def test_no_template_has_inline_script_or_style():
    offenders = []
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    for path in ROOT.glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        if inline_script.search(text) or "<style" in text or re.search(r"\sstyle=", text):
            offenders.append(str(path.relative_to(ROOT)))
        if re.search(r"\son[a-z]+=", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
