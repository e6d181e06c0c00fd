"""The site agent end to end: hpcgate running (live server), Slurm running, the agent in between.

An approval in hpcgate becomes a working Slurm account after one agent run, and the jobs run
there come back as usage after the next.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from allocations import services as allocation_services
from allocations.models import SchedulerExport
from systems.models import Partition
from tests.factories import make_application, make_review, make_site_token, make_user
from tests.slurm.helpers import account_name, gpu_seconds_in, sacct_text, submit, wait_until
from usage.models import UsageRecord
from vetting.services import intake, review

pytestmark = [pytest.mark.slurm, pytest.mark.django_db(transaction=True)]


AGENT = Path(__file__).resolve().parents[2] / "agent" / "hpcgate_agent.py"


def approve_on_lumi(gpu_hours: int):
    """A startup asks for time on LUMI, two reviewers agree, the call manager approves."""
    founder = make_user(username="founder")
    application = make_application(applicant=founder, state="draft")
    lumi = Partition.objects.get(cluster__name="lumi")
    requested = {p.pk: None for p in Partition.objects.exclude(pk=lumi.pk)}
    intake.application_save_draft(
        application=application,
        actor=founder,
        fields={"start_date": timezone.localdate()},  # to start right away
        resources={**requested, lumi.pk: 500},
    )
    intake.application_submit(application=application, actor=founder)
    review.application_screen(application_id=application.pk)
    manager = make_user(role="call manager")
    for _ in range(2):
        make_review(application=application, manager=manager)
    application.refresh_from_db()
    decision = review.application_approve(
        application=application, actor=manager, reason="Strong team.", grants={lumi.pk: gpu_hours}
    )
    return founder, decision.allocations.get()


def run_agent(live_server, key: str, state_dir: Path, slurm) -> str:
    environ = {
        "PATH": os.environ["PATH"],
        "SLURM_CONF": slurm.slurm_conf,
        "HPCGATE_URL": live_server.url,
        "HPCGATE_SITE_TOKEN": key,
        "HPCGATE_CLUSTER": "lumi",
        "HPCGATE_AGENT_STATE_DIR": str(state_dir),
        "HPCGATE_AGENT_IMPORT_TIMEOUT": "120",
    }
    # -I -S: the agent runs on the standard library alone, as on a cluster's admin node.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(AGENT)], env=environ, capture_output=True, text=True,
        timeout=300, check=False, cwd="/tmp",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_an_approval_becomes_a_slurm_account_and_its_jobs_come_back_as_usage(
    migrated_state, slurm, live_server, open_call, tmp_path
):
    try:
        _approval_to_usage(slurm, live_server, tmp_path)
    finally:
        # The live server's threads keep connections of their own; the next test's flush needs
        # this one closed.
        connections["default"].close()


def _approval_to_usage(slurm, live_server, tmp_path):
    founder, allocation = approve_on_lumi(gpu_hours=100)
    assert allocation.state == "active"
    account = account_name("agent")
    allocation_services.allocation_rename_account(allocation=allocation, account=account)
    allocation_services.allocation_users_set(
        allocation=allocation, usernames=["alice"], actor=founder
    )
    token, key = make_site_token(cluster="lumi", name="lumi admin node")
    assert submit(slurm, account, "alice", "--wrap", "true")[0] is None  # not in Slurm yet

    first = run_agent(live_server, key, tmp_path / "state", slurm)

    assert "applied export" in first
    export = SchedulerExport.objects.get(for_site_agent=True)
    assert export.applied_at is not None and export.applied_by_token == token
    job = wait_until(
        lambda: submit(slurm, account, "alice", "--gres=gpu:2", "--wrap", "sleep 3")[0],
        "alice submits under the new account",
    )
    assert submit(slurm, account, "bob", "--wrap", "true")[0] is None
    slurm.wait_for_state(job, {"COMPLETED"})
    # slurmdbd may take a few seconds before a finished job shows in a time-window query (the
    # agent's overlap picks up such a job on its next run; this test wants it on this one).
    wait_until(
        lambda: f"|{job}|{account}|alice|standard-g|COMPLETED|" in sacct_text(slurm, account),
        "sacct lists the finished job",
    )

    second = run_agent(live_server, key, tmp_path / "state", slurm)

    assert "no pending changes for cluster lumi" in second
    assert "imported" in second
    records = UsageRecord.objects.filter(allocation=allocation)
    slurm_says = sacct_text(slurm, account)
    assert sorted(records.values_list("job_id", "gpu_seconds")) == gpu_seconds_in(slurm_says), (
        f"agent:\n{second}\nsacct:\n{slurm_says}"
    )
    assert records.get().gpu_seconds >= 2 * 3
