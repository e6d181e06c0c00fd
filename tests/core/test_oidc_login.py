"""Logging in through a real OpenID Connect provider (tests/core/oidc_provider.py, over HTTP) with
Django's test client: accounts, linking by verified e-mail, roles from entitlements, the log-in
pages under each policy."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from core import roles
from tests.conftest import client_for
from tests.core.oidc_fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    PROVIDER_ID,
    REVIEWER_ENTITLEMENT,
    log_in_through_provider,
    person,
)
from tests.factories import PASSWORD as LOCAL_PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()


def _logged_in_user(client):
    return User.objects.get(pk=client.session["_auth_user_id"])


def test_new_person_lands_on_the_organisation_step_with_a_verified_address(client, oidc_provider):
    response = log_in_through_provider(client, login="ada")

    assert response.status_code == 302
    assert response["Location"] == "/apply/"
    assert client.get("/apply/")["Location"].startswith("/organisations/new/")
    user = _logged_in_user(client)
    assert user.email == "ada@uni.example"
    assert not user.is_staff and not user.groups.exists()
    assert not user.has_usable_password()
    assert EmailAddress.objects.get(user=user).verified
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == (PROVIDER_ID, "ada-7f3e")


def test_second_log_in_is_the_same_account_even_with_a_new_address_at_the_provider(
    client, oidc_provider
):
    log_in_through_provider(client, login="ada")
    first = _logged_in_user(client)
    client.logout()
    oidc_provider.people_set(ada=person("ada-7f3e", "ada.lovelace@other-uni.example"))

    log_in_through_provider(client, login="ada")

    assert _logged_in_user(client) == first
    assert User.objects.count() == 1
    assert SocialAccount.objects.get().extra_data["userinfo"]["email"] == (
        "ada.lovelace@other-uni.example"
    )


def test_verified_address_from_the_provider_logs_into_the_account_that_verified_it(
    client, oidc_provider, applicant
):
    oidc_provider.people_set(founder=person("founder-at-uni", applicant.email))

    response = log_in_through_provider(client, login="founder")

    assert response.status_code == 302
    assert _logged_in_user(client) == applicant
    assert SocialAccount.objects.get(uid="founder-at-uni").user == applicant
    applicant.refresh_from_db()
    assert applicant.check_password(LOCAL_PASSWORD)
    assert User.objects.count() == 1


def test_provider_whose_linking_by_email_is_off_never_logs_into_an_existing_account(
    client, oidc_provider, applicant, mailoutbox
):
    oidc_provider.configure(link_by_email=False)
    oidc_provider.people_set(founder=person("founder-at-uni", applicant.email))

    log_in_through_provider(client, login="founder")

    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    assert mailoutbox[-1].to == [applicant.email]


def test_unverified_address_from_the_provider_never_logs_into_an_existing_account(
    client, oidc_provider, applicant
):
    oidc_provider.people_set(mallory=person("mallory", applicant.email, verified=False))

    log_in_through_provider(client, login="mallory")

    assert client.session.get("_auth_user_id") != str(applicant.pk)
    assert not SocialAccount.objects.filter(user=applicant).exists()
    assert client.get("/applications/").status_code == 302


def test_verified_address_does_not_log_into_an_account_whose_address_is_unverified(
    client, oidc_provider
):
    squatter = User.objects.create_user("squatter", "ada@uni.example", LOCAL_PASSWORD)
    EmailAddress.objects.create(user=squatter, email=squatter.email, verified=False, primary=True)

    log_in_through_provider(client, login="ada")

    assert client.session.get("_auth_user_id") != str(squatter.pk)
    assert not SocialAccount.objects.filter(user=squatter).exists()


def test_provider_gives_no_staff_role_unless_an_entitlement_is_mapped(client, oidc_provider):
    oidc_provider.people_set(
        ada=person("ada-7f3e", "ada@uni.example", eduperson_entitlement=[REVIEWER_ENTITLEMENT])
    )

    log_in_through_provider(client, login="ada", next_url="/admin/")

    user = _logged_in_user(client)
    assert not user.is_staff and not user.groups.exists()
    assert client.get("/admin/").status_code == 302


def test_mapped_entitlement_gives_the_reviewer_role_and_losing_it_takes_the_role_away(
    client, oidc_provider
):
    oidc_provider.configure(entitlement_roles={REVIEWER_ENTITLEMENT: roles.REVIEWER})
    oidc_provider.people_set(
        ada=person("ada-7f3e", "ada@uni.example", eduperson_entitlement=[REVIEWER_ENTITLEMENT])
    )

    response = log_in_through_provider(client, login="ada", next_url="/admin/")

    assert response["Location"] == "/admin/"
    user = _logged_in_user(client)
    assert user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == [roles.REVIEWER]
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/vetting/reviewassignment/").status_code == 200

    client.logout()
    oidc_provider.people_set(ada=person("ada-7f3e", "ada@uni.example", eduperson_entitlement=[]))
    log_in_through_provider(client, login="ada", next_url="/admin/")

    user.refresh_from_db()
    assert not user.is_staff and not user.groups.exists()
    assert client.get("/admin/").status_code == 302


def test_mapping_leaves_roles_it_does_not_manage(client, oidc_provider, operator):
    oidc_provider.configure(entitlement_roles={REVIEWER_ENTITLEMENT: roles.REVIEWER})
    oidc_provider.people_set(ops=person("ops-at-centre", operator.email))

    log_in_through_provider(client, login="ops", next_url="/admin/")

    assert _logged_in_user(client) == operator
    operator.refresh_from_db()
    assert operator.is_staff
    assert list(operator.groups.values_list("name", flat=True)) == [roles.OPERATOR]


def test_orcid_and_unique_id_from_the_provider_are_shown_on_the_linked_log_ins_page(
    client, oidc_provider
):
    oidc_provider.people_set(
        ada=person(
            "ada-7f3e",
            "ada@uni.example",
            orcid="https://orcid.org/0000-0002-1825-0097",
            voperson_id="ada-7f3e@myaccessid.example",
        )
    )
    log_in_through_provider(client, login="ada")

    page = client.get("/accounts/3rdparty/").content.decode()

    assert 'href="https://orcid.org/0000-0002-1825-0097"' in page
    assert "ada-7f3e@myaccessid.example" in page
    assert "Test IdP" in page
    assert 'href="/accounts/3rdparty/"' in client.get("/accounts/email/").content.decode()


def test_logged_in_applicant_links_a_provider_with_another_address_and_then_uses_it(
    client, oidc_provider, applicant
):
    oidc_provider.configure(entitlement_roles={REVIEWER_ENTITLEMENT: roles.REVIEWER})
    oidc_provider.people_set(
        founder=person(
            "founder-at-uni", "f.ounder@uni.example", eduperson_entitlement=[REVIEWER_ENTITLEMENT]
        )
    )
    page = client_for(client, applicant).get("/accounts/3rdparty/").content.decode()
    assert "Link Test IdP" in page

    response = log_in_through_provider(
        client, login="founder", process="connect", next_url="/accounts/3rdparty/"
    )

    assert response.status_code == 302
    assert SocialAccount.objects.get().user == applicant
    applicant.refresh_from_db()
    assert not applicant.is_staff, "linking is not a log-in: no roles from it"
    client.logout()
    log_in_through_provider(client, login="founder")
    assert _logged_in_user(client) == applicant
    applicant.refresh_from_db()
    assert applicant.is_staff and applicant.groups.filter(name=roles.REVIEWER).exists()


def test_admin_log_in_page_offers_the_provider_and_comes_back_to_the_admin(
    client, oidc_provider, reviewer
):
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert 'name="password"' in page
    start = f"/accounts/oidc/{PROVIDER_ID}/login/?process=login&amp;next=%2Fadmin%2F"
    assert f'action="{start}"' in page
    assert "Log in with Test IdP" in page
    oidc_provider.people_set(expert=person("expert-at-uni", reviewer.email))

    response = log_in_through_provider(client, login="expert", next_url="/admin/")

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_site_log_in_page_offers_password_and_provider_by_default(client, oidc_provider):
    page = client.get("/accounts/login/").content.decode()

    assert 'name="password"' in page
    assert "Log in with Test IdP" in page
    assert 'href="/accounts/signup/"' in page


def test_without_local_accounts_applicants_only_see_providers(client, oidc_provider, settings):
    settings.LOCAL_ACCOUNTS = False
    settings.ACCOUNT_SIGNUP_ENABLED = False

    page = client.get("/accounts/login/").content.decode()

    assert 'name="password"' not in page
    assert "Log in with Test IdP" in page
    assert "/accounts/signup/" not in page
    assert 'href="/admin/login/"' in page
    assert 'name="password1"' not in client.get("/accounts/signup/").content.decode()


def test_without_local_accounts_an_applicant_password_is_refused_but_staff_keep_theirs(
    client, oidc_provider, settings, applicant, reviewer
):
    settings.LOCAL_ACCOUNTS = False

    client.post("/accounts/login/", {"login": applicant.email, "password": LOCAL_PASSWORD})
    assert "_auth_user_id" not in client.session

    response = client.post(
        "/admin/login/?next=/admin/", {"username": reviewer.username, "password": LOCAL_PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_without_local_accounts_a_new_person_still_signs_up_through_the_provider(
    client, oidc_provider, settings
):
    settings.LOCAL_ACCOUNTS = False
    settings.ACCOUNT_SIGNUP_ENABLED = False

    response = log_in_through_provider(client, login="ada")

    assert response["Location"] == "/apply/"
    assert _logged_in_user(client).email == "ada@uni.example"


def test_staff_who_must_use_the_provider_cannot_use_their_password(
    client, api_client, oidc_provider, settings, reviewer, applicant
):
    settings.OIDC_REQUIRED_FOR_STAFF = True

    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert 'name="password"' not in page
    assert "Log in with Test IdP" in page
    client.post("/admin/login/", {"username": reviewer.username, "password": LOCAL_PASSWORD})
    assert "_auth_user_id" not in client.session
    client.post("/accounts/login/", {"login": reviewer.email, "password": LOCAL_PASSWORD})
    assert "_auth_user_id" not in client.session
    token = api_client.post(
        "/api/v1/auth/token/", {"username": reviewer.username, "password": LOCAL_PASSWORD}
    )
    assert token.status_code == 401

    # Applicants keep their password; staff get in through the provider.
    client.post("/accounts/login/", {"login": applicant.email, "password": LOCAL_PASSWORD})
    assert client.session["_auth_user_id"] == str(applicant.pk)
    client.logout()
    oidc_provider.people_set(expert=person("expert-at-uni", reviewer.email))
    log_in_through_provider(client, login="expert", next_url="/admin/")
    assert client.get("/admin/").status_code == 200


def test_new_person_with_an_unverified_address_verifies_it_before_logging_in(
    client, oidc_provider, mailoutbox
):
    oidc_provider.people_set(bob=person("bob-1", "bob@startup.example", verified=False))

    response = log_in_through_provider(client, login="bob")

    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert mailoutbox[-1].to == ["bob@startup.example"]
    assert not EmailAddress.objects.get(email="bob@startup.example").verified


def test_the_test_provider_is_a_real_one_discovery_jwks_and_signed_id_tokens(oidc_provider):
    config = requests.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    assert config["issuer"] == oidc_provider.issuer
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = "http://127.0.0.1:9/callback"
    session = requests.Session()
    form = session.get(
        config["authorization_endpoint"],
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid email",
            "redirect_uri": redirect_uri,
            "state": "s1",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
    )
    back = session.post(form.url, {"username": "ada", "password": PASSWORD}, allow_redirects=False)
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    assert query["state"] == ["s1"]
    token = requests.post(
        config["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    ).json()

    keys = jwt.PyJWKClient(config["jwks_uri"])
    claims = jwt.decode(
        token["id_token"],
        keys.get_signing_key_from_jwt(token["id_token"]).key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=oidc_provider.issuer,
    )
    assert claims["sub"] == "ada-7f3e" and claims["email_verified"] is True
    userinfo = requests.get(
        config["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert userinfo.json()["email"] == "ada@uni.example"
    assert requests.get(config["userinfo_endpoint"]).status_code == 401
