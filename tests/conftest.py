"""Shared fixtures: the people of DOMAIN.md, one of each, and the seeded reference data."""

import os
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.db.models.signals import post_migrate
from rest_framework.test import APIClient

from core import roles
from demo.reference import demo_call_seed
from organisations.countries import countries_ensure
from organisations.models import Country
from systems.reference import reference_data_seed
from tests.core.oidc_fixtures import oidc_provider, oidc_provider_process  # noqa: F401
from tests.factories import make_user


@pytest.fixture
def applicant(db):
    return make_user(username="founder")


@pytest.fixture
def other_applicant(db):
    return make_user(username="rival")


@pytest.fixture
def outsider(db):
    return make_user(username="outsider")


@pytest.fixture
def reviewer(db):
    return make_user(username="expert", role=roles.REVIEWER)


@pytest.fixture
def other_reviewer(db):
    return make_user(username="expert2", role=roles.REVIEWER)


@pytest.fixture
def call_manager(db):
    return make_user(username="chair", role=roles.CALL_MANAGER)


@pytest.fixture
def operator(db):
    return make_user(username="ops", role=roles.OPERATOR)


@pytest.fixture
def governance_officer(db):
    return make_user(username="gov", role=roles.GOVERNANCE_OFFICER)


@pytest.fixture(scope="session")
def reference_rows(django_db_setup, django_db_blocker) -> list[list[Model]]:
    """The rows reference_data_seed adds to a migrated database (history included), read once
    per test process from a real run of the seed that is then rolled back. Countries are left
    to the migration that loads them (see reference_data)."""
    with django_db_blocker.unblock(), transaction.atomic():
        models = [m for m in apps.get_models(include_auto_created=True) if m is not Country]
        before = {model: set(model._base_manager.values_list("pk", flat=True)) for model in models}
        reference_data_seed()
        rows = [
            list(model._base_manager.exclude(pk__in=before[model]).order_by("pk"))
            for model in models
        ]
        transaction.set_rollback(True)
    return [table for table in rows if table]


def _countries_after_a_flush(sender, **kwargs) -> None:
    """A transactional test ends by emptying every table and sending `post_migrate`, which
    brings back the roles and permissions but not the countries the migration loaded: the tests
    after it in the same process (a Slurm group's run early among them) find those again."""
    if sender.name == "organisations":
        countries_ensure()


post_migrate.connect(_countries_after_a_flush, dispatch_uid="tests-countries-after-flush")


@pytest.fixture
def reference_data(db, reference_rows):
    """The seeded reference data: the same rows as reference_data_seed, inserted in one
    statement per table instead of the seed's hundred-odd queries in every test that needs it."""
    if not Country.objects.exists():
        # a transactional test emptied the tables; the seed reloads what the migration loaded
        countries_ensure()
    for table in reference_rows:
        type(table[0])._base_manager.bulk_create(table)


@pytest.fixture
def migrated_state(transactional_db):
    """For transactional tests: the rows `migrate` leaves (content types, permissions, roles,
    countries), whatever the transactional test before emptied. Tests that need them ask for
    this instead of serialized_rollback, whose reload collides with the roles post_migrate
    recreates after another test's flush."""
    ContentType.objects.clear_cache()
    emit_post_migrate_signal(verbosity=0, interactive=False, db=DEFAULT_DB_ALIAS)
    countries_ensure()


@pytest.fixture
def open_call(reference_data):
    return demo_call_seed()


@pytest.fixture
def api_client():
    return APIClient()


def client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def broker_down(monkeypatch):
    """`broker_down(task, ...)`: publishing those tasks fails as when the broker is unreachable,
    until `monkeypatch.undo()`."""
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    def down(*tasks) -> None:
        for task in tasks:
            monkeypatch.setattr(task, "apply_async", refuse)

    return down


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Uploaded annexes (application_for, seed_demo, ...) go to the test's own directory, never
    to the shared var/media."""
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling counters and cached pages from one test never reach the next."""
    from django.core.cache import cache

    cache.clear()
    yield


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
