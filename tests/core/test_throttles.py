"""Password guesses are limited per client address and per account from one address, on the
site's log-in, the admin's and the API token endpoint alike; behind trusted proxies the client's
address is read from X-Forwarded-For, never from a header a client sets itself."""

import pytest
from django.test import RequestFactory

from core.proxies import TrustedProxies, trusted_proxies_parse
from core.throttles import client_address
from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"


def _request(remote="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXIES = TrustedProxies()
    assert client_address(_request(forwarded="198.51.100.1")) == "203.0.113.9"


def test_one_trusted_proxy_gives_the_address_it_saw(settings):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")
    request = _request(remote="10.0.0.2", forwarded="6.6.6.6, 198.51.100.1")
    assert client_address(request) == "198.51.100.1"


def test_trusted_proxy_addresses_are_walked_from_the_right(settings):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("10.0.0.0/8, 172.18.0.3")
    request = _request(remote="172.18.0.3", forwarded="6.6.6.6, 198.51.100.1, 10.1.2.3")
    assert client_address(request) == "198.51.100.1"
    # a request that did not come through a trusted proxy is taken at its own address
    assert client_address(_request(forwarded="6.6.6.6")) == "203.0.113.9"


def test_trusted_proxies_setting_refuses_nonsense():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        trusted_proxies_parse("proxy.example")


def _admin_login(client, username, password, address):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=address,
    )


@pytest.mark.django_db
def test_admin_login_stops_taking_guesses(client, settings, operator):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")
    for attempt in range(40):
        _admin_login(client, "ops", f"guess-{attempt}", "198.51.100.66")
    response = _admin_login(client, "ops", PASSWORD, "198.51.100.66")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


@pytest.mark.django_db
def test_a_guesser_does_not_lock_the_staff_member_out_from_elsewhere(client, settings, operator):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")
    for attempt in range(20):
        _admin_login(client, "ops", f"guess-{attempt}", "198.51.100.66")
    response = _admin_login(client, "ops", PASSWORD, "192.0.2.10")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def _site_login(client, login, password, address):
    return client.post(
        "/accounts/login/",
        {"login": login, "password": password},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=address,
    )


@pytest.mark.django_db
def test_site_login_counts_per_client_behind_the_proxy(
    client, settings, applicant, other_applicant
):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")
    for attempt in range(12):
        _site_login(client, "rival", f"guess-{attempt}", "198.51.100.66")
    # everyone else behind the same proxy still logs in
    response = _site_login(client, "founder", PASSWORD, "192.0.2.10")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(applicant.pk)
    client.logout()
    # and so does the attacked account's owner, from their own address
    response = _site_login(client, "rival", PASSWORD, "192.0.2.11")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(other_applicant.pk)


@pytest.mark.django_db
def test_token_endpoint_locks_guesses_per_account_and_address(api_client, settings, applicant):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")

    def post(password, address):
        return api_client.post(
            TOKEN_URL,
            {"username": "founder", "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=address,
        )

    for attempt in range(5):
        assert post(f"guess-{attempt}", "198.51.100.66").status_code == 401
    blocked = post(PASSWORD, "198.51.100.66")
    assert blocked.status_code == 429
    assert blocked.json()["detail"]
    assert int(blocked["Retry-After"]) > 0
    assert post(PASSWORD, "192.0.2.10").status_code == 200


@pytest.mark.django_db
def test_token_endpoint_calls_are_limited_per_client_not_per_proxy(api_client, settings):
    settings.TRUSTED_PROXIES = trusted_proxies_parse("1")
    for attempt in range(30):
        api_client.post(
            TOKEN_URL,
            {"username": "nobody", "password": "x"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}",
        )
    response = api_client.post(
        TOKEN_URL,
        {"username": "nobody", "password": "x"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="192.0.2.200",
    )
    assert response.status_code == 401
