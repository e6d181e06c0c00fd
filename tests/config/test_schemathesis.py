"""A short Schemathesis pass in the suite (the long one runs in .ci/run): the running app,
fuzzed against its own schema as each demo role, answers no server error and nothing the schema
does not describe."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections

from core.services import token_create

ROOT = Path(settings.BASE_DIR)

pytestmark = [
    pytest.mark.schemathesis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / ".ci" / "fuzz_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.ACCOUNT_RATE_LIMITS = False
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    users = get_user_model().objects
    return {role: token_create(user=users.get(username=role), name="fuzz")[1] for role in
            ("applicant", "reviewer", "manager", "operator")}  # fmt: skip


def test_the_api_answers_as_its_schema_says_for_every_role(live_server, demo, tmp_path):
    if not (Path(sys.executable).parent / "schemathesis").exists():
        pytest.skip("schemathesis is not installed (make install)")
    try:
        failed = _fuzz_module().fuzz(
            live_server.url, demo, max_examples=2, max_time=15, report_dir=tmp_path
        )
    finally:
        connections["default"].close()
    assert failed == 0, "schemathesis found problems; see its output above"
