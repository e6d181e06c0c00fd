"""A real Celery worker, in its own process, against the configured broker and the test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from compliance.models import Alert
from tests.compliance.test_check_thresholds import split_model  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_CONFIGURED,
        reason="no CELERY_BROKER_URL configured (CI always configures Redis)",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db):
    env = {
        **os.environ,
        "DEBUG": "1",
        "HPCGATE_TESTING": "0",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    queue = f"test-worker-{os.getpid()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield queue
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_worker_runs_the_threshold_check_sent_through_the_broker(worker, split_model):  # noqa: F811
    from config.celery import app

    app.send_task("compliance.tasks.thresholds_check", queue=worker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Alert.objects.filter(level="gpai", scope="model", subject="north-13b").exists():
            break
        time.sleep(0.5)
    assert Alert.objects.filter(level="gpai", scope="model", subject="north-13b").exists()
    assert Alert.objects.filter(level="gpai", scope="organisation").count() == 1
