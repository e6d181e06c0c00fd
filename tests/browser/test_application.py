"""A founder's whole path in real headless Chromium: sign up, verify, register the company,
fill in every section, submit, see the submitted state."""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone

from demo.builders import minimal_pdf
from demo.reference import demo_call_seed
from systems.models import Partition
from systems.reference import reference_data_seed
from vetting.models import Application
from vetting.rules import ETHICS_KEYS

SCREENSHOT_DIR = Path(os.environ.get("HPCGATE_SCREENSHOT_DIR", "/tmp"))
PASSWORD = "a-long-pass-phrase-9"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrated_state"),
]


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def seeded(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    # The file cache outlives a test run; allauth's per-address limits would skip mails.
    settings.ACCOUNT_RATE_LIMITS = False
    reference_data_seed()
    demo_call_seed()


def _verification_link() -> str:
    body = mail.outbox[-1].body
    return re.search(r"https?://\S+/accounts/confirm-email/\S+", body).group(0)


def test_founder_signs_up_and_submits_an_application(browser_page, live_server, seeded):
    try:
        _sign_up_and_apply(browser_page, live_server)
    finally:
        # Under Playwright's sync API the test body runs in a context of its own, so its
        # database connection is not the one the test teardown closes.
        connections["default"].close()


def _sign_up_and_apply(browser_page, live_server):
    page = browser_page
    base = live_server.url

    # Sign up and verify the e-mail address.
    page.goto(f"{base}/accounts/signup/")
    page.locator("#id_email").fill("founder@aurora.example")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    link = _verification_link().replace("http://testserver", base)
    link = re.sub(r"^https?://[^/]+", base, link)
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()

    # Log in.
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill("founder@aurora.example")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"/$"))

    # /apply/ sends a founder without a company to register it first.
    page.goto(f"{base}/apply/")
    page.wait_for_url(re.compile(r"/organisations/new/"))
    page.get_by_label("Legal name").fill("Aurora AI Oy")
    page.get_by_label("Country of the registered seat").select_option("FI")
    page.get_by_label("Company registration or VAT number").fill("FI12345678")
    page.get_by_label("Founded on").fill("2023-04-01")
    page.get_by_label("Website").fill("https://aurora.example")
    page.get_by_label("Staff headcount").fill("12")
    page.get_by_label("Annual turnover (EUR)").fill("800000")
    page.get_by_label("Balance sheet total (EUR)").fill("1200000")
    page.get_by_label("Beneficial owners").fill("Aino Virtanen")
    page.get_by_role("button", name="Register organisation").click()
    page.wait_for_url(re.compile(r"/apply/$"))

    page.get_by_label(re.compile("Fast Lane")).check()
    page.get_by_role("button", name="Start the application").click()
    page.wait_for_url(re.compile(r"/applications/\d+/edit/$"))

    # 1. Project
    page.get_by_label("Project title").fill("Finnish legal language model")
    page.get_by_label("Abstract").fill("A 7B model for Finnish and Swedish legal text.")
    page.get_by_label("Field").select_option("language")
    page.get_by_label("The project is exclusively civilian").check()
    page.get_by_label("Openness of the results").select_option("open")
    page.get_by_label("Openness of the model weights").select_option("open")
    page.locator("#id_eu_market_0").check()
    # 2. Model plan
    page.get_by_label("Model name").fill("aurora-legal-7b")
    page.get_by_label("Modality").select_option("text")
    page.get_by_label("Kind of training").select_option("from_scratch")
    page.get_by_label("Parameters").fill("7 billion")
    page.get_by_label("Training tokens").fill("2e11")
    # 3. Resources
    leonardo = Partition.objects.get(cluster__name="leonardo")
    page.locator(f"#id_resources_{leonardo.pk}").fill("20,000")
    start = timezone.localdate() + timedelta(days=14)
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("Duration").select_option("3")
    page.get_by_label("Expected utilisation of peak").fill("40 %")

    # Saving a draft midway keeps everything and shows the estimate.
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_selector("text=Draft saved.")
    assert page.get_by_label("Parameters").input_value() == "7000000000"
    assert "below the GPAI indication" in page.locator("#estimate").inner_text()

    # 4. Team
    page.get_by_label("Principal investigator (PI)").fill("Aino Virtanen")
    page.get_by_label("PI e-mail").fill("aino@aurora.example")
    page.get_by_label("PI contract ends on").fill((start + timedelta(days=400)).isoformat())
    page.get_by_label("Team size").fill("6")
    page.get_by_label("Experience with GPU clusters").fill("1B models on 64 A100 GPUs (Slurm).")
    # 5. Ethics: personal data yes (with an explanation), civilian purpose yes, the rest no.
    for key in ETHICS_KEYS:
        answer = 0 if key in ("personal_data", "civilian_purpose") else 1
        page.locator(f"#id_ethics_{key}_answer_{answer}").check()
    # 6. AI Act commitments and 7. the annex
    page.get_by_label("Sign the GPAI Code of Practice").check()
    pdf = {"name": "annex.pdf", "mimeType": "application/pdf", "buffer": minimal_pdf()}
    page.get_by_label("Technical annex (PDF, at most 10 MB)").set_input_files(pdf)

    # Submitting without the explanation fails, keeps everything and says what to fix.
    page.get_by_role("button", name="Submit application").click()
    explanation = page.locator("#id_ethics_personal_data_explanation")
    error = page.locator("#id_ethics_personal_data_explanation_error")
    assert "You answered yes" in error.inner_text()
    assert "id_ethics_personal_data_explanation_error" in explanation.get_attribute(
        "aria-describedby"
    )
    assert page.get_by_label("Project title").input_value() == "Finnish legal language model"
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-application-errors.png"))
    for section in ("resources", "ethics"):
        page.locator(f"#{section}").screenshot(
            path=str(SCREENSHOT_DIR / f"hpcgate-application-{section}.png")
        )

    explanation.fill("We train on published court decisions; names are pseudonymised.")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-application-narrow.png"), full_page=False)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.get_by_role("button", name="Submit application").click()

    page.wait_for_url(re.compile(r"/applications/\d+/$"))
    # Automatic screening may already have moved it on; the history shows the submission.
    assert page.locator("#application-state").inner_text() != "Draft"
    history = page.locator(".history").inner_text()
    assert "Submitted · Application submitted." in history
    page.screenshot(path=str(SCREENSHOT_DIR / "hpcgate-application-submitted.png"), full_page=True)

    application = Application.objects.get()
    assert application.submitted_at is not None
    (receipt,) = [m for m in mail.outbox if "Application received" in m.subject]
    assert receipt.to == ["founder@aurora.example"]
    assert f"/applications/{application.pk}/" in receipt.body
    assert application.estimate_snapshot["total"]["gpu_hours"] == 20_000
    assert application.technical_annex
