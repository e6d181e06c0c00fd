"""Every kind of page works in real Chromium under the Content-Security-Policy: the site's
pages, the admin (lists, forms with their date widgets, the ranking page) and the API docs,
with no violation reported and no script error."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from demo.reference import demo_call_seed
from systems.reference import reference_data_seed
from tests.browser.test_application import browser_page  # noqa: F401
from tests.factories import make_allocation, make_organisation, make_usage_record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrated_state"),
]

PASSWORD = "a-long-pass-phrase-9"


@pytest.fixture
def site(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.ACCOUNT_RATE_LIMITS = False
    reference_data_seed()
    demo_call_seed()
    admin = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    organisation = make_organisation()
    from organisations.models import Membership

    Membership.objects.create(organisation=organisation, user=admin, role=Membership.Role.OWNER)
    allocation = make_allocation(organisation=organisation, model_name="acme-7b")
    make_usage_record(allocation=allocation, gpu_seconds=7200)
    return allocation


def test_pages_admin_and_api_docs_work_under_the_policy(browser_page, live_server, site):  # noqa: F811
    try:
        _visit_everything(browser_page, live_server.url, site)
    finally:
        connections["default"].close()


def _visit_everything(page, base, allocation):
    problems = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{base}/")
    page.goto(f"{base}/admin/login/")
    page.locator("#id_username").fill("root")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_selector("#site-name")
    for path in (
        "/admin/",
        "/admin/allocations/allocation/",
        f"/admin/allocations/allocation/{allocation.pk}/change/",
        "/admin/systems/call/add/",
        "/admin/vetting/ranking/",
        "/applications/",
        f"/usage/allocations/{allocation.pk}/",
        f"/usage/allocations/{allocation.pk}/annex-xi/",
        "/accounts/tokens/",
    ):
        response = page.goto(f"{base}{path}")
        assert response.status == 200, path
    # the date widgets of the admin's forms are made by its scripts
    page.goto(f"{base}/admin/systems/call/add/")
    page.wait_for_selector(".datetimeshortcuts")
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .information-container", timeout=30_000)
    assert problems == []
