"""Real GPU jobs of every shape come back through import_usage as exactly the GPU-seconds that
sacct reports: single, array, heterogeneous, cancelled while running, requeued, and one pulled
while it runs and again once it has finished."""

import io

import pytest
from django.core.management import call_command

from allocations.exports import export_create
from systems.models import Cluster
from tests.factories import make_allocation
from tests.slurm.helpers import (
    account_name,
    gpu_seconds_in,
    run_script,
    sacct_text,
    submit,
    wait_until,
    write,
)
from tests.slurm_cluster import FINAL_STATES
from usage.models import UsageRecord

pytestmark = [pytest.mark.slurm, pytest.mark.django_db]


def import_usage(path) -> str:
    out = io.StringIO()
    call_command("import_usage", "--cluster", "lumi", "--timezone", "UTC", str(path), stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def all_finished(text: str) -> bool:
    states = [line.split("|")[5].split(" ")[0] for line in text.splitlines()[1:]]
    return bool(states) and set(states) <= FINAL_STATES | {"REQUEUED"}


def recorded(allocation) -> list[tuple[str, int]]:
    return sorted(
        UsageRecord.objects.filter(allocation=allocation).values_list("job_id", "gpu_seconds")
    )


def test_real_gpu_jobs_import_to_the_gpu_seconds_sacct_reports(slurm, reference_data, tmp_path):
    acme = account_name("jobs")
    allocation = make_allocation(account=acme, users=("alice",), gpu_hours=50)
    run_script(
        slurm, export_create(fmt="commands", cluster=Cluster.objects.get(name="lumi")).content
    )
    wait_until(lambda: submit(slurm, acme, "alice", "--wrap", "true")[0], "alice can submit")

    def job(*args):
        job_id, said = submit(slurm, acme, "alice", *args)
        assert job_id, said
        return job_id

    single = job("--gres=gpu:2", "--wrap", "sleep 3")
    array = job("--array=0-2", "--gres=gpu:1", "--wrap", "sleep 2")
    het = job("--gres=gpu:1", ":", "--gres=gpu:2", "--wrap", "sleep 3")
    cancelled = job("--gres=gpu:1", "--wrap", "sleep 120")
    requeued = job("--requeue", "--gres=gpu:1", "--wrap", "sleep 6")
    long_running = job("--gres=gpu:2", "--wrap", "sleep 30")
    slurm.wait_for_state(requeued, {"RUNNING"})
    slurm.scontrol("requeue", requeued)
    slurm.wait_for_state(cancelled, {"RUNNING"})
    slurm.run("scancel", cancelled)
    slurm.wait_for_state(cancelled)
    slurm.wait_for_state(long_running, {"RUNNING"})

    # First pull: the long job still runs.
    first = sacct_text(slurm, acme)
    assert f"{long_running}|{long_running}|{acme}|alice|standard-g|RUNNING|" in first
    summary = import_usage(write(tmp_path, "first.txt", first))

    assert "rejected=0" in summary
    assert recorded(allocation) == gpu_seconds_in(first)
    assert UsageRecord.objects.get(job_id=long_running, allocation=allocation).running

    # Second pull once everything has finished.
    for finished in (single, array, het, requeued, long_running):
        slurm.wait_for_state(finished, timeout=90)

    # slurmdbd may take a few seconds before a time-window query shows what -j already does.
    def finished_text():
        text = sacct_text(slurm, acme)
        return text if all_finished(text) else None

    second = wait_until(finished_text, "sacct lists every job finished")
    summary = import_usage(write(tmp_path, "second.txt", second))

    assert "rejected=0" in summary and "updated=" in summary
    assert recorded(allocation) == gpu_seconds_in(second)
    long_record = UsageRecord.objects.get(job_id=long_running, allocation=allocation)
    assert not long_record.running and long_record.gpu_seconds >= 2 * 30
    job_ids = [job_id for job_id, _ in recorded(allocation)]
    assert {f"{array}_0", f"{array}_1", f"{array}_2", f"{het}+0", f"{het}+1"} <= set(job_ids)
    assert job_ids.count(requeued) == 2  # each run of the requeued job is a record of its own
    states = dict(UsageRecord.objects.filter(allocation=allocation).values_list("job_id", "state"))
    assert states[cancelled] == "CANCELLED"
    # Importing the same text again changes nothing.
    assert import_usage(write(tmp_path, "again.txt", second)).startswith("imported=0 updated=0")
