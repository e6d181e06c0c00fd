import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_KEY = "k" * 30 + "-production-secret-value-0123456789"


def _run(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "HPCGATE_TESTING"}
    }
    env.update({"HPCGATE_TESTING": "0", "DEBUG": "0"}, **env_overrides)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key():
    result = _run(["manage.py", "check"], ALLOWED_HOSTS="hpc.example.eu")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _run(["manage.py", "check"], SECRET_KEY=PRODUCTION_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list" in result.stderr


@pytest.mark.slow
def test_deploy_check_passes_without_warnings_in_production():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="hpc.example.eu",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_need_no_environment():
    result = _run(["manage.py", "check"], DEBUG="1")
    assert result.returncode == 0, result.stderr
