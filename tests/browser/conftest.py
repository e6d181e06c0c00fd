"""The headless Chromium every browser test drives: Debian's, never a downloaded build."""

import os
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium(monkeypatch):
    """A launched browser, closed after the test; skipped (or failed, when
    HPCGATE_REQUIRE_BROWSER=1) where Debian's chromium is missing."""
    if not CHROMIUM.exists():
        if os.environ.get("HPCGATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and HPCGATE_REQUIRE_BROWSER=1.")
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium').")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the test
    # body are still synchronous and safe. monkeypatch keeps the flag out of later tests.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    # Under Playwright's sync API the test body runs in a context of its own, so its database
    # connection is not the one the test teardown closes.
    connections["default"].close()
