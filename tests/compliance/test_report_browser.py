"""The confidential reporting flow in real headless Chromium: a reporter reports, a governance
officer replies in the admin, the reporter reads the reply with the case key, and another
browser without the key sees nothing."""

import os
import re
from pathlib import Path

import pytest
from django.db import connections

from compliance.models import MisuseReport
from core import roles
from tests.factories import PASSWORD, make_user

SCREENSHOT_DIR = Path(os.environ.get("HPCGATE_SCREENSHOT_DIR", "/tmp"))
REPORT = (
    "Northwind AI and its subsidiary Northwind Labs run the same 30B pre-training on LUMI and "
    "Leonardo at once, each under the GPAI line."
)
REPLY = "Thank you. We have asked both companies for their job lists and will write again."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrated_state"),
]


def _page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def test_report_reply_and_read_back_with_the_case_key_only(chromium, live_server):
    try:
        _report_flow(chromium, live_server.url)
    finally:
        # Under Playwright's sync API the test body runs in a context of its own, so its
        # database connection is not the one the test teardown closes.
        connections["default"].close()


def _report_flow(browser, base):
    officer = make_user(username="gov", role=roles.GOVERNANCE_OFFICER, staff=True)

    # 1. Someone reports, without an account, and is shown the case key once.
    reporter_context, reporter = _page(browser)
    reporter.goto(f"{base}/")
    reporter.get_by_role("link", name="Report a concern, confidentially").click()
    reporter.wait_for_url(re.compile(r"/report/$"))
    reporter.get_by_label("What is it about?").select_option("split_run")
    reporter.get_by_label("What happened").fill(REPORT)
    reporter.get_by_role("button", name="Send the report").click()
    reporter.wait_for_selector("#case-key")
    key = reporter.locator("#case-key").inner_text().strip()
    assert re.fullmatch(r"([A-Z2-7]{4}-){7}[A-Z2-7]{4}", key)
    assert key not in reporter.url
    reporter.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-report-received.png"))
    assert {c["name"] for c in reporter_context.cookies()} == {"csrftoken"}
    report = MisuseReport.objects.get()
    assert report.messages.count() == 1

    # 2. The governance officer reads it in the admin and replies.
    officer_context, admin = _page(browser)
    admin.goto(f"{base}/admin/login/")
    admin.locator("#id_username").fill(officer.username)
    admin.locator("#id_password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto(f"{base}/admin/compliance/misusereport/")
    admin.get_by_role("link", name=f"Case {report.pk}").click()
    assert REPORT in admin.locator(".field-conversation").inner_text()
    assert "due" in admin.locator(".field-acknowledgement").inner_text()
    admin.locator("#id_reply").fill(REPLY)
    admin.locator('input[name="_save"]').click()
    admin.wait_for_selector(".messagelist")
    admin.goto(f"{base}/admin/compliance/misusereport/{report.pk}/change/")
    assert "sent" in admin.locator(".field-acknowledgement").inner_text()
    admin.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-report-admin.png"), full_page=True)
    officer_context.close()

    # 3. The reporter comes back with the key, reads the reply and adds to the report.
    reporter.goto(f"{base}/report/case/")
    reporter.get_by_label("Case key").fill(key.lower())
    reporter.get_by_role("button", name="Open the case").click()
    reporter.wait_for_selector("#conversation")
    conversation = reporter.locator("#conversation").inner_text()
    assert REPORT in conversation and REPLY in conversation
    assert officer.username not in conversation
    reporter.get_by_label("Add to your report").fill("Their job names start with nw-30b-.")
    reporter.get_by_role("button", name="Send").click()
    reporter.wait_for_selector("text=Your addition was sent.")
    assert "nw-30b-" in reporter.locator("#conversation").inner_text()
    assert reporter.url.removeprefix(base) == "/report/case/"
    reporter.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-report-case.png"), full_page=True)
    assert {c["name"] for c in reporter_context.cookies()} == {"csrftoken"}
    reporter_context.close()

    # 4. Another browser, without the key, sees nothing of it.
    other_context, other = _page(browser)
    other.goto(f"{base}/report/case/")
    assert REPORT not in other.content() and REPLY not in other.content()
    other.get_by_label("Case key").fill("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH")
    other.get_by_role("button", name="Open the case").click()
    other.wait_for_selector("text=No case has this key")
    assert REPORT not in other.content() and REPLY not in other.content()
    other.goto(f"{base}/admin/compliance/misusereport/{report.pk}/change/")
    assert "/admin/login/" in other.url
    assert REPORT not in other.content()
    other_context.close()

    assert MisuseReport.objects.get().messages.count() == 3
