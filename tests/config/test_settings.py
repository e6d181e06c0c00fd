import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_KEY = "k" * 30 + "-production-secret-value-0123456789"


# config/settings.py reads a .env file without overwriting the environment, so a developer's .env
# would fill in whatever the child process is not given: each test gives these three, empty
# (which the settings take as unset) unless it says otherwise.
BLANK = {"SECRET_KEY": "", "ALLOWED_HOSTS": "", "SITE_URL": ""}


def _run(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    """Run a script in production mode (DEBUG off, not under test) with exactly this environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "HPCGATE_TESTING", *BLANK}
    }
    env.update({"HPCGATE_TESTING": "0", "DEBUG": "0", **BLANK}, **env_overrides)
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


def _site_url(**env: str) -> subprocess.CompletedProcess:
    """settings.SITE_URL in production; SITE_URL is empty (unset) unless given."""
    code = "from django.conf import settings; print(settings.SITE_URL)"
    return _run(
        ["manage.py", "shell", "--no-imports", "-c", code], **{"SECRET_KEY": PRODUCTION_KEY, **env}
    )


def test_mail_links_use_the_first_named_host_over_https_unless_site_url_says_otherwise():
    assert _site_url(ALLOWED_HOSTS=".example.eu,hpc.example.eu").stdout.strip() == (
        "https://hpc.example.eu"
    )
    given = _site_url(ALLOWED_HOSTS="hpc.example.eu", SITE_URL="https://gate.example.eu/")
    assert given.stdout.strip() == "https://gate.example.eu"


def test_production_refuses_to_start_without_a_site_url_to_put_in_mails():
    result = _site_url(ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "SITE_URL must be set" in result.stderr


@pytest.mark.slow
def test_deploy_check_passes_without_warnings_in_production():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="hpc.example.eu",
        SITE_URL="https://hpc.example.eu",
        REPORT_ENCRYPTION_KEY="3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_need_no_environment():
    result = _run(["manage.py", "check"], DEBUG="1")  # the three settings empty
    assert result.returncode == 0, result.stderr


def _run_unset(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    """Run with DEBUG and the production settings not set at all, as in a fresh shell."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "HPCGATE_TESTING", "HPCGATE_FROM_CHECKOUT", *BLANK}
    }
    env.update({"HPCGATE_TESTING": "0", **BLANK}, **env_overrides)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_manage_py_in_a_checkout_uses_the_development_settings_without_any_environment():
    code = "from django.conf import settings; print(settings.DEBUG)"
    result = _run_unset([sys.executable, "manage.py", "shell", "--no-imports", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_manage_py_keeps_production_settings_when_a_secret_key_is_given():
    code = "from django.conf import settings; print(settings.DEBUG)"
    result = _run_unset(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="hpc.example.eu",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_wsgi_and_celery_refuse_to_start_without_a_secret_key_even_from_a_checkout():
    for module in ("config.wsgi", "config.celery"):
        code = f"import {module}; import django; django.setup()"
        result = _run_unset([sys.executable, "-c", code])
        assert result.returncode != 0, module
        assert "SECRET_KEY must be set" in result.stderr


def test_a_command_with_the_database_down_prints_one_line_and_exits_1():
    result = _run_unset(
        [sys.executable, "manage.py", "check_thresholds"],
        DEBUG="1",
        DATABASE_URL="postgres://nobody@127.0.0.1:9/hpcgate",
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("The database does not answer")


def test_make_run_gives_every_process_mail_links_on_the_port_it_serves():
    """Under `make run PORT=8101` the Celery worker's e-mails link to :8101, not :8000."""
    plan = subprocess.run(
        ["make", "-n", "run", "PORT=8101"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    line = next(line for line in plan.splitlines() if "honcho start" in line)
    code = "from django.conf import settings; print(settings.SITE_URL)"
    command = line.replace(
        ".venv/bin/honcho start -f Procfile",
        f"{sys.executable} manage.py shell --no-imports -c '{code}'",
    )
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", *BLANK}}
    env["HPCGATE_TESTING"] = "0"
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "http://127.0.0.1:8101", result.stderr
