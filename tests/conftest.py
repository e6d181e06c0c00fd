"""Shared fixtures: the people of DOMAIN.md, one of each, and the seeded reference data."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from core import roles
from demo.reference import demo_call_seed
from systems.reference import reference_data_seed
from tests.oidc_fixtures import oidc_provider, oidc_provider_process  # noqa: F401

PASSWORD = "correct-horse-battery-staple"


def _person(username: str, role: str | None = None, *, staff: bool = False):
    from allauth.account.models import EmailAddress

    user = get_user_model().objects.create_user(
        username=username,
        email=f"{username}@{username}.example",
        password=PASSWORD,
        is_staff=staff,
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    if role:
        groups = roles.roles_ensure()
        user.groups.add(groups[role])
    return user


@pytest.fixture
def applicant(db):
    return _person("founder")


@pytest.fixture
def other_applicant(db):
    return _person("rival")


@pytest.fixture
def outsider(db):
    return _person("outsider")


@pytest.fixture
def reviewer(db):
    return _person("expert", roles.REVIEWER, staff=True)


@pytest.fixture
def other_reviewer(db):
    return _person("expert2", roles.REVIEWER, staff=True)


@pytest.fixture
def call_manager(db):
    return _person("chair", roles.CALL_MANAGER, staff=True)


@pytest.fixture
def operator(db):
    return _person("ops", roles.OPERATOR, staff=True)


@pytest.fixture
def governance_officer(db):
    return _person("gov", roles.GOVERNANCE_OFFICER, staff=True)


@pytest.fixture
def reference_data(db):
    reference_data_seed()


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
