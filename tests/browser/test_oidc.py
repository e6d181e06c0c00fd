"""Federated log-in in real headless Chromium against a real OpenID Connect provider
(tests/core/oidc_provider.py): a new person signs in at the provider and lands on the organisation
step of /apply/, a second log-in is the same account, and a mapped entitlement makes a reviewer
who reaches the admin through its log-in page."""

import os
import re

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.db import connections

from core import roles
from demo.reference import demo_call_seed
from systems.reference import reference_data_seed
from tests.browser import test_application as test_browser_application
from tests.core.oidc_fixtures import (
    PASSWORD,
    REVIEWER_ENTITLEMENT,
    ProviderUnavailable,
    person,
    provider_for_test,
)

SCREENSHOT_DIR = test_browser_application.SCREENSHOT_DIR
# The same headless Chromium as the application's browser test.
browser_page = test_browser_application.browser_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrated_state"),
]


@pytest.fixture
def provider(oidc_provider_process, settings):
    try:
        return provider_for_test(oidc_provider_process, settings)
    except ProviderUnavailable as error:
        if os.environ.get("HPCGATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{error} and HPCGATE_REQUIRE_BROWSER=1.")
        pytest.skip(str(error))


def _sign_in_at_provider(page, login: str) -> None:
    page.wait_for_selector("text=Test identity provider")
    page.get_by_label("User name").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_federated_log_in_for_an_applicant_and_a_reviewer(browser_page, live_server, provider):
    try:
        _applicant_and_reviewer(browser_page, live_server.url, provider)
    finally:
        # As in test_browser_application: the sync API's context has its own connection.
        connections["default"].close()


def _applicant_and_reviewer(page, base, provider):
    reference_data_seed()
    demo_call_seed()
    provider.configure(entitlement_roles={REVIEWER_ENTITLEMENT: roles.REVIEWER})
    provider.people_set(
        ada=person("ada-7f3e", "ada@uni.example", name="Ada Lovelace"),
        grace=person(
            "grace-1906",
            "grace@uni.example",
            eduperson_entitlement=[REVIEWER_ENTITLEMENT],
            orcid="0000-0002-1825-0097",
        ),
    )
    User = get_user_model()

    # /apply/ asks for a log-in; the provider's button goes there and back.
    page.goto(f"{base}/apply/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/apply/$"))
    page.get_by_role("button", name="Log in with Test IdP").click()
    _sign_in_at_provider(page, "ada")
    # A new person with no organisation: /apply/ sends them to register it first.
    page.wait_for_url(re.compile(r"/organisations/new/"))
    assert page.get_by_label("Legal name").is_visible()
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-oidc-organisation-step.png"))
    ada = User.objects.get(email="ada@uni.example")
    assert not ada.is_staff

    # Log out and in again: the same account.
    page.get_by_role("button", name=re.compile("Log out")).click()
    page.goto(f"{base}/accounts/login/")
    page.get_by_role("button", name="Log in with Test IdP").click()
    _sign_in_at_provider(page, "ada")
    page.wait_for_url(re.compile(r"^" + re.escape(base) + r"/$"))
    assert page.get_by_role("button", name=re.compile("Log out")).is_visible()
    assert User.objects.filter(email="ada@uni.example").count() == 1
    assert SocialAccount.objects.filter(user=ada).count() == 1
    page.get_by_role("button", name=re.compile("Log out")).click()

    # A reviewer by entitlement, through the admin's own log-in page.
    page.goto(f"{base}/admin/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_role("button", name="Log in with Test IdP").click()
    _sign_in_at_provider(page, "grace")
    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.get_by_role("link", name=re.compile("Review assignments")).is_visible()
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-oidc-reviewer-admin.png"))
    grace = User.objects.get(email="grace@uni.example")
    assert grace.is_staff and grace.groups.filter(name=roles.REVIEWER).exists()

    # Her account page shows the ORCID iD the provider gave.
    page.goto(f"{base}/accounts/3rdparty/")
    assert page.get_by_role("link", name="0000-0002-1825-0097").is_visible()
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-oidc-linked-log-ins.png"), full_page=True)
