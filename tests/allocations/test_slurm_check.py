"""manage.py slurm_check: differences on stdout, exit 1 when any, repairs on request."""

import io
import os
import stat
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from allocations import services
from tests.factories import make_allocation

pytestmark = pytest.mark.django_db

MATCHING = (
    "lumi|root||normal|||\n"
    "lumi|acme_llm||acme_llm|acme_llm||\n"
    "lumi|acme_llm|alice|acme_llm|acme_llm||\n"
    "lumi|acme_llm|bob|acme_llm|acme_llm||\n"
)
QOS = "normal||\nacme_llm|NoDecay|gres/gpu=600\n"


@pytest.fixture
def allocation(reference_data):
    return make_allocation(account="acme_llm", gpu_hours=10)


def check(*arguments, stdin=None, monkeypatch=None):
    """(exit status, stdout, stderr) of slurm_check."""
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        call_command("slurm_check", "--cluster", "lumi", *arguments, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_slurm_as_hpcgate_says_exits_0(allocation, tmp_path):
    (tmp_path / "assoc.txt").write_text(MATCHING)
    (tmp_path / "qos.txt").write_text(QOS)

    status, out, err = check(str(tmp_path / "assoc.txt"), "--qos", str(tmp_path / "qos.txt"))

    assert (status, out) == (0, "")
    assert "slurm_check: cluster lumi, 1 hpcgate account: 0 differences" in err


def test_each_difference_is_one_line_and_the_exit_status_is_1(allocation, tmp_path):
    services.allocation_suspend(allocation=allocation)
    (tmp_path / "assoc.txt").write_text(MATCHING.replace("|bob|", "|mallory|"))
    (tmp_path / "qos.txt").write_text(QOS.replace("=600", "=6000"))

    status, out, err = check(str(tmp_path / "assoc.txt"), "--qos", str(tmp_path / "qos.txt"))

    assert status == 1
    assert out.splitlines() == [
        "account acme_llm: QOS acme_llm has GrpTRESMins gres/gpu=6000, hpcgate grants 600",
        "account acme_llm: open, hpcgate says blocked (GrpSubmitJobs=0)",
        "account acme_llm: user mallory is not in hpcgate",
        "account acme_llm: user bob is missing",
    ]
    assert "4 differences" in err


def test_repair_writes_the_commands_to_a_file(allocation, tmp_path):
    (tmp_path / "assoc.txt").write_text(MATCHING)
    (tmp_path / "qos.txt").write_text(QOS.replace("=600", "=1"))
    target = tmp_path / "repair.sh"

    status, out, err = check(
        str(tmp_path / "assoc.txt"), "--qos", str(tmp_path / "qos.txt"), "--repair", str(target)
    )

    assert status == 1 and len(out.splitlines()) == 1
    assert target.read_text() == (
        "#!/bin/sh\n"
        "# hpcgate: sacctmgr repairs for cluster lumi\n"
        "set -e\n"
        "sacctmgr -i modify qos where name=acme_llm set GrpTRESMins=gres/gpu=600\n"
    )
    assert f"repairs written to {target}" in err


def test_repair_to_stdout_moves_the_differences_to_stderr(allocation, monkeypatch):
    status, out, err = check(
        "-", "--repair", "-", stdin="lumi|root||normal|||\n", monkeypatch=monkeypatch
    )

    assert status == 1
    assert out.startswith("#!/bin/sh\n") and "add account name=acme_llm" in out
    assert "account acme_llm: missing" in err
    assert "QOS not compared" in err


def test_without_a_file_it_runs_sacctmgr(allocation, tmp_path, monkeypatch):
    fake = tmp_path / "sacctmgr"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"print({MATCHING!r} if 'assoc' in sys.argv else {QOS!r}, end='')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    status, out, err = check()

    assert (status, out) == (0, "")
    assert "QOS not compared" not in err


def test_without_a_file_or_sacctmgr_it_says_what_to_run(allocation, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(CommandError, match="sacctmgr is not on this host") as raised:
        call_command("slurm_check", "--cluster", "lumi")
    assert raised.value.returncode == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--cluster", "atlantis", "-"], "Unknown cluster 'atlantis'"),
        (["--cluster", "lumi", "/nonexistent/assoc.txt"], "Cannot read /nonexistent"),
    ],
)
def test_bad_arguments_exit_2(allocation, arguments, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("slurm_check", *arguments)
    assert raised.value.returncode == 2


def test_an_unreadable_listing_exits_2(allocation, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("lumi|acme_llm\n"))

    with pytest.raises(CommandError, match="association line 1: 2 fields") as raised:
        call_command("slurm_check", "--cluster", "lumi", "-")
    assert raised.value.returncode == 2
