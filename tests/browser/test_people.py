"""What people read and are told, in real headless Chromium on the demo site: every page of
every role under axe-core, the applicant's pages at phone width, usage where applicants look,
forms that recover, confirmations, notifications and the staff pages."""

import io
import re

import pytest
from django.core import mail
from django.core.management import call_command

from allocations.models import Allocation, ChangeRequest
from core.models import NotificationOptOut
from tests.browser.test_application import SCREENSHOT_DIR
from vetting.models import Application, Decision, ReviewAssignment

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrated_state"),
]

DEMO_PASSWORD = "hpcgate-demo"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# axe-core impacts that fail a page
FAILING = ("serious", "critical")


@pytest.fixture
def demo(settings, tmp_path):
    """The demo site of `make run`: systems, the call, the demo people, applications in every
    state, allocations with imported usage."""
    settings.MEDIA_ROOT = tmp_path
    settings.ACCOUNT_RATE_LIMITS = False
    call_command("seed_demo", stdout=io.StringIO())
    mail.outbox.clear()


def _page(chromium, viewport=DESKTOP):
    # The Content-Security-Policy of the site allows no injected script; axe is injected.
    context = chromium.new_context(viewport=viewport, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def _log_in(page, base: str, username: str, *, staff: bool) -> None:
    if staff:
        page.goto(f"{base}/admin/login/")
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(DEMO_PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/$"))
    else:
        page.goto(f"{base}/accounts/login/")
        page.locator("#id_login").fill(username)
        page.locator("#id_password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_url(re.compile(r"/$"))


# Markup drawn by a third-party widget, not by hpcgate: Swagger UI's operation list on
# /api/docs/ (its own contrast and nested-button problems). The page around it is checked.
THIRD_PARTY = {"/api/docs/": "#swagger-ui"}


def _axe_failures(page, path: str = "") -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    context = None
    if path in THIRD_PARTY:
        page.wait_for_selector("main")  # drawn; the check does not depend on timing
        context = {"exclude": [[THIRD_PARTY[path]]]}
    results = Axe().run(page, context=context)
    return [
        f"{violation['id']} ({violation['impact']}): "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in FAILING
    ]


def _role_pages() -> dict[tuple[str | None, bool], list[str]]:
    """Every page each role uses, from the demo data: (user, staff) -> paths."""
    lumi = Allocation.objects.get(cluster__name="lumi", account="aurora_ai_1")
    draft = Application.objects.filter(created_by__username="applicant", state="draft").first()
    submitted = Application.objects.filter(
        created_by__username="applicant", state="in_review"
    ).first()
    approved = Application.objects.get(state="approved")
    pending = ReviewAssignment.objects.filter(reviewer__username="reviewer", state="pending")
    done = ReviewAssignment.objects.filter(reviewer__username="reviewer", state="submitted")
    mode = approved.access_mode
    model = Allocation.objects.exclude(model_name="").get(account="aurora_ai_1").model_name
    return {
        (None, False): [
            "/",
            "/accounts/login/",
            "/accounts/signup/",
            "/accounts/password/reset/",
            "/admin/login/",
            "/api/docs/",
        ],
        ("applicant", False): [
            "/applications/",
            f"/applications/{submitted.pk}/",
            f"/applications/{draft.pk}/edit/",
            f"/applications/{submitted.pk}/withdraw/",
            "/apply/",
            "/organisations/",
            f"/organisations/{lumi.organisation_id}/",
            "/allocations/",
            f"/allocations/{lumi.pk}/",
            "/usage/",
            f"/usage/allocations/{lumi.pk}/",
            f"/usage/allocations/{lumi.pk}/annex-xi/",
            f"/usage/models/{model}/",
            "/accounts/email/",
            "/accounts/password/change/",
            "/accounts/notifications/",
        ],
        ("applicant2", False): [
            f"/applications/{approved.pk}/",
            f"/allocations/{Allocation.objects.get(cluster__name='vega').pk}/",
        ],
        ("reviewer", True): [
            "/admin/",
            "/admin/vetting/reviewassignment/",
            f"/admin/vetting/reviewassignment/{pending.first().pk}/change/",
            f"/admin/vetting/reviewassignment/{done.first().pk}/change/",
            "/admin/vetting/rubric/",
        ],
        ("manager", True): [
            "/admin/",
            "/admin/vetting/application/",
            f"/admin/vetting/application/{approved.pk}/change/",
            "/admin/vetting/ranking/",
            f"/admin/vetting/ranking/{mode.pk}/",
            "/admin/vetting/reviewerprofile/",
            "/admin/vetting/decision/",
            "/admin/allocations/changerequest/",
            "/admin/systems/call/",
        ],
        ("operator", True): [
            "/admin/allocations/allocation/",
            f"/admin/allocations/allocation/{lumi.pk}/change/",
            "/admin/allocations/schedulerexport/",
            "/admin/usage/usagerecord/",
            "/admin/usage/usageimport/",
            "/admin/compliance/alert/",
        ],
        ("governance", True): [
            "/governance/annual-report/",
            "/admin/compliance/largerunentry/",
            "/admin/systems/thresholdpolicy/",
            "/admin/systems/thresholdpolicy/1/change/",
            "/admin/systems/thresholdpolicy/add/?from=1",
        ],
    }


def test_every_page_of_every_role_passes_axe(chromium, live_server, demo):
    base = live_server.url
    failures, checked = {}, set()
    for (username, staff), paths in _role_pages().items():
        page = _page(chromium)
        if username:
            _log_in(page, base, username, staff=staff)
        for path in paths:
            response = page.goto(f"{base}{path}")
            assert response.status == 200, (username, path, response.status)
            problems = _axe_failures(page, path)
            if problems:
                failures[f"{username or 'anonymous'} {path}"] = problems
            checked.add(path)
        page.context.close()
    assert not failures, failures
    assert len(checked) >= 30, sorted(checked)


def test_the_api_documentation_has_a_language_a_main_and_a_heading(chromium, live_server):
    page = _page(chromium)
    page.goto(f"{live_server.url}/api/docs/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.wait_for_selector("main")
    assert page.locator("main").count() == 1
    assert page.locator("h1").first.inner_text() == "hpcgate API"


def test_applicant_pages_work_on_a_phone(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium, PHONE)
    page.goto(f"{base}/")
    paths = ["/"] + [
        path for path in _role_pages()[("applicant", False)] if not path.startswith("/accounts/")
    ]
    _log_in(page, base, "applicant", staff=False)
    too_wide = {}
    for path in paths:
        page.goto(f"{base}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
    assert not too_wide, too_wide
    # the access modes read as labelled rows, not a table wider than the screen
    page.goto(f"{base}/")
    size = page.locator("table.stack-narrow td[data-label=Size]").first
    assert size.is_visible() and size.bounding_box()["width"] <= PHONE["width"]
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-landing-phone.png"), full_page=True)
    lumi = Allocation.objects.get(cluster__name="lumi")
    page.goto(f"{base}/usage/allocations/{lumi.pk}/annex-xi/")
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-annex-xi-phone.png"), full_page=True)


def test_applicant_sees_use_remaining_and_projection_where_they_look(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium)
    _log_in(page, base, "applicant", staff=False)
    page.get_by_role("link", name="Allocations", exact=True).click()
    table = page.locator("table.allocation-table")
    headings = table.locator("thead").inner_text().lower()
    assert "used" in headings and "remaining" in headings
    assert page.locator("meter.use-meter").count() == 2
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    page.wait_for_url(re.compile(r"/usage/$"))
    assert page.locator("table.usage-table tbody tr").count() == 2
    page.locator("table.usage-table a", has_text="Finnish-Swedish legal assistant").click()
    page.wait_for_url(re.compile(r"/usage/allocations/\d+/$"))
    assert "At the rate so far" in page.locator("#usage-projection").inner_text()
    assert page.locator("svg.chart polyline.chart-projection").count() == 2
    lumi = Allocation.objects.get(cluster__name="lumi")
    page.goto(f"{base}/allocations/{lumi.pk}/")
    assert "At the rate so far" in page.locator("#projection").inner_text()
    # the demo's LUMI allocation is past the first alert level (75 %)
    assert "of the grant is used" in page.locator("#use-warning").inner_text()
    assert "user support" in page.locator("#account-help").inner_text()
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-allocation-use.png"), full_page=True)

    # applicant2's approved application links to its scheduled allocation, which says when
    # it starts and that the operator has not set it up yet
    other = _page(chromium)
    _log_in(other, base, "applicant2", staff=False)
    approved = Application.objects.get(state="approved")
    other.goto(f"{base}/applications/{approved.pk}/")
    other.locator("#granted-allocations a").first.click()
    other.wait_for_url(re.compile(r"/allocations/\d+/$"))
    note = other.locator("#scheduled-note").inner_text()
    assert "This allocation starts on" in note and "has not set it up" in note


def test_forms_recover_and_reload_safely(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium)
    # log-in: e-mail, password, then the button; "Forgot your password?" after it
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_password"
    page.keyboard.press("Tab")
    if page.evaluate("document.activeElement.id") == "id_remember":
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign In"

    _log_in(page, base, "applicant", staff=False)
    lumi = Allocation.objects.get(cluster__name="lumi")
    detail = f"{base}/allocations/{lumi.pk}/"
    page.goto(detail)
    page.locator("#id_username").fill("Carol Smith")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_url(f"{detail}#users-title")
    assert "not a valid cluster user name" in page.locator("#users-title + *").page.content()
    assert page.locator("#id_username").input_value() == "Carol Smith"
    response = page.reload()
    assert response.status == 200 and "not a valid cluster user name" not in page.content()
    response = page.goto(f"{base}/allocations/{lumi.pk}/users/")
    assert response.status == 200 and page.url == detail
    # fields needed for one kind of request say so instead of "(optional)"
    changes = page.locator("section[aria-labelledby=changes-title]").inner_text()
    assert "(for a top-up)" in changes and "(for an extension)" in changes
    assert "(optional)" not in changes

    # withdrawing asks first; saying no keeps the application
    submitted = Application.objects.filter(
        created_by__username="applicant", state="in_review"
    ).first()
    page.goto(f"{base}/applications/{submitted.pk}/withdraw/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Withdraw the application").click()
    page.wait_for_timeout(300)
    submitted.refresh_from_db()
    assert submitted.state == "in_review" and "/withdraw/" in page.url
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Withdraw the application").click()
    page.wait_for_url(re.compile(rf"/applications/{submitted.pk}/$"))
    submitted.refresh_from_db()
    assert submitted.state == "withdrawn"


def test_change_requests_and_preferences_send_the_mails_people_expect(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium)
    _log_in(page, base, "applicant", staff=False)
    # the applicant turns end-date reminders off, keeps the rest
    page.goto(f"{base}/accounts/notifications/")
    page.get_by_label("Reminders 30 and 7 days before an allocation ends").uncheck()
    assert page.get_by_label("The decision on an extension or top-up you asked for").is_disabled()
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Your e-mail preferences are saved.")
    assert NotificationOptOut.objects.filter(
        user__username="applicant", kind="allocation_expiry"
    ).exists()

    lumi = Allocation.objects.get(cluster__name="lumi")
    page.goto(f"{base}/allocations/{lumi.pk}/")
    page.get_by_label("What do you need?").select_option("top_up")
    page.get_by_label(re.compile("^Extra GPU-hours")).fill("10000")
    page.get_by_label("Justification").fill("The 7B run needs another week.")
    page.get_by_role("button", name="Send request").click()
    page.wait_for_selector("text=Your request is with the call manager.")
    (to_manager,) = [m for m in mail.outbox if "Top-up requested" in m.subject]
    change = ChangeRequest.objects.get()
    assert f"/admin/allocations/changerequest/{change.pk}/change/" in to_manager.body
    assert re.search(r"https?://\S+/admin/allocations/changerequest/", to_manager.body)

    manager = _page(chromium)
    _log_in(manager, base, "manager", staff=True)
    manager.goto(f"{base}/admin/allocations/changerequest/")
    manager.locator("input[name=_selected_action]").first.check()
    manager.locator("select[name=action]").select_option("approve")
    manager.get_by_role("button", name="Go").click()
    manager.locator("#id_reason").fill("Good progress.")
    manager.get_by_role("button", name="Confirm").click()
    manager.wait_for_selector("text=done")
    decided = [m for m in mail.outbox if "top-up request was approved" in m.subject]
    assert [m.to for m in decided] == [["founder@aurora-ai.example"]]
    assert f"/allocations/{lumi.pk}/" in decided[0].body


def test_staff_pages_for_the_call_manager(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    _log_in(page, base, "manager", staff=True)
    page.get_by_role("link", name="Ranking and decisions").first.click()
    page.wait_for_url(re.compile(r"/admin/vetting/ranking/$"))
    page.get_by_role("link", name="Fast Lane").first.click()
    page.wait_for_url(re.compile(r"/admin/vetting/ranking/\d+/$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    for grant in page.locator("#ranking input[type=number]").all():
        assert page.locator(f"label[for={grant.get_attribute('id')}]").count() == 1
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-ranking.png"), full_page=True)
    page.goto(f"{base}/admin/vetting/reviewerprofile/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2  # reviewer and reviewer2, as auto-assign sees them
    assert not missing, missing  # the favicon included


def test_reviewer_confirms_before_submitting_a_final_review(chromium, live_server, demo):
    base = live_server.url
    page = _page(chromium)
    _log_in(page, base, "reviewer", staff=True)
    assignment = ReviewAssignment.objects.get(reviewer__username="reviewer", state="pending")
    page.goto(f"{base}/admin/vetting/reviewassignment/{assignment.pk}/change/")
    page.locator("[name=confirm]").click()
    text = page.locator("#content-main").inner_text()
    assert "× 10" in text and "below the GPAI indication" in text and "Finland" in text
    for select in page.locator("select[name^=score_]").all():
        select.select_option("4")
    page.locator("#id_recommendation").select_option("approve")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("input[name=submit]").click()
    page.wait_for_timeout(300)
    assignment.refresh_from_db()
    assert assignment.state == "accepted"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("input[name=submit]").click()
    page.wait_for_selector("text=Review submitted")
    assignment.refresh_from_db()
    assert assignment.state == "submitted"
    assert Decision.objects.count() == 1  # the demo's approval only
