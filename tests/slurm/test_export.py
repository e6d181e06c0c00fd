"""Exports against a real Slurm: the flat file and its QOS lines load, the budget is a NoDecay QOS
equal to the grant, listed users submit and others cannot, suspensions, reactivations, top-ups
and exhaustion reach sbatch through the `commands` export."""

import io

import pytest
from django.core.management import call_command

from allocations import services
from allocations.exports import export_create
from systems.models import Cluster
from tests.factories import make_allocation, make_usage_record, make_user
from tests.slurm.helpers import (
    account_name,
    qos_lines,
    run_script,
    slurm_check,
    submit,
    wait_until,
)

pytestmark = [pytest.mark.slurm, pytest.mark.django_db]


@pytest.fixture
def lumi(reference_data):
    return Cluster.objects.get(name="lumi")


def apply_commands(slurm, lumi) -> str:
    """Produces the next `commands` export and runs it as an operator would."""
    script = export_create(fmt="commands", cluster=lumi).content
    run_script(slurm, script)
    return script


def associations(slurm) -> list[str]:
    return sorted(
        slurm.run(
            "sacctmgr", "-nP", "show", "assoc", "where", "cluster=lumi",
            "format=Account,User,QOS,DefaultQOS,GrpTRESMins,GrpSubmitJobs",
        ).stdout.splitlines()
    )  # fmt: skip


def budgets(slurm) -> dict[str, tuple[str, str]]:
    """{QOS: (flags, GrpTRESMins)} as Slurm holds them."""
    out = slurm.run("sacctmgr", "-nP", "show", "qos", "format=Name,Flags,GrpTRESMins").stdout
    return {name: (flags, limit) for name, flags, limit in (row.split("|") for row in out.split())}


def test_flat_file_loads_after_its_qos_lines_and_a_second_load_changes_nothing(
    slurm, lumi, tmp_path
):
    acme, beta = account_name("acme"), account_name("beta")
    make_allocation(account=acme, users=("alice", "bob"), gpu_hours=10)
    paused = make_allocation(account=beta, users=("bob",), gpu_hours=3)
    services.allocation_suspend(allocation=paused)
    flat = export_create(fmt="slurm", cluster=lumi).content
    (tmp_path / "lumi.cfg").write_text(flat)

    def load():
        run_script(slurm, qos_lines(flat))
        return slurm.run("sacctmgr", "-i", "load", f"file={tmp_path / 'lumi.cfg'}")

    load()
    first = associations(slurm)
    again = load()

    assert "Nothing new added" in again.stdout
    assert associations(slurm) == first
    # The grant is the QOS's limit, in GPU-minutes, and the QOS does not decay.
    assert budgets(slurm)[acme] == ("NoDecay", "gres/gpu=600")
    assert budgets(slurm)[beta] == ("NoDecay", "gres/gpu=180")
    assert first == sorted([
        f"{acme}||{acme}|{acme}||", f"{acme}|alice|{acme}|{acme}||",
        f"{acme}|bob|{acme}|{acme}||",
        f"{beta}||{beta}|{beta}||0", f"{beta}|bob|{beta}|{beta}||",
        "root||normal|||", "root|root|normal|||",
    ])  # fmt: skip
    # What was loaded is what hpcgate says, to slurm_check as well.
    assert slurm_check() == (0, [])


def test_listed_users_submit_under_the_account_and_nobody_else_does(slurm, lumi):
    acme, beta = account_name("acme"), account_name("beta")
    make_allocation(account=acme, users=("alice",), gpu_hours=10)
    paused = make_allocation(account=beta, users=("bob",), gpu_hours=10)
    services.allocation_suspend(allocation=paused)
    apply_commands(slurm, lumi)

    job = wait_until(lambda: submit(slurm, acme, "alice", "--gres=gpu:1", "--wrap", "true")[0],
                     "alice can submit")  # fmt: skip
    refused = {
        "not listed": submit(slurm, acme, "mallory", "--wrap", "true"),
        "another allocation's user": submit(slurm, acme, "bob", "--wrap", "true"),
        "suspended allocation": submit(slurm, beta, "bob", "--wrap", "true"),
        "another QOS than the budget": submit(
            slurm, acme, "alice", "--qos=normal", "--wrap", "true"
        ),
    }

    assert job
    for why, (job_id, said) in refused.items():
        assert job_id is None, why
        assert said, why
    assert "AssocGrpSubmitJobsLimit" in refused["suspended allocation"][1]


def test_suspension_makes_sbatch_refuse_and_reactivation_lets_it_submit(slurm, lumi):
    acme = account_name("acme")
    allocation = make_allocation(account=acme, users=("alice",), gpu_hours=10)
    apply_commands(slurm, lumi)
    assert submit(slurm, acme, "alice", "--wrap", "true")[0]

    services.allocation_suspend(allocation=allocation)
    script = apply_commands(slurm, lumi)

    assert "GrpSubmitJobs=0" in script
    job, said = submit(slurm, acme, "alice", "--wrap", "true")
    assert job is None and "AssocGrpSubmitJobsLimit" in said

    services.allocation_reactivate(allocation=allocation)
    script = apply_commands(slurm, lumi)

    assert "GrpSubmitJobs=-1" in script
    assert submit(slurm, acme, "alice", "--wrap", "true")[0]


def test_a_top_up_raises_the_budget_and_releases_the_job_waiting_for_it(slurm, lumi):
    acme = account_name("acme")
    allocation = make_allocation(account=acme, users=("alice",), gpu_hours=1)
    apply_commands(slurm, lumi)
    # 8 GPUs for 10 minutes need 80 GPU-minutes; the grant is 60.
    job, _ = submit(slurm, acme, "alice", "--gres=gpu:8", "-t", "10", "--wrap", "sleep 30")
    wait_until(
        lambda: "QOSGrpGRESMinutes" in slurm.run("squeue", "-h", "-j", job, "-o", "%r").stdout,
        "the job waits for the budget",
    )

    change = services.change_request_submit(
        allocation=allocation, kind="top_up", justification="more", requested_by=make_user(),
        extra_gpu_hours=1,
    )  # fmt: skip
    services.change_request_approve(change_request=change, actor=None)
    script = apply_commands(slurm, lumi)

    assert f"sacctmgr -i modify qos where name={acme} set GrpTRESMins=gres/gpu=120" in script
    assert budgets(slurm)[acme] == ("NoDecay", "gres/gpu=120")
    wait_until(lambda: set(slurm.job_states(job).values()) & {"RUNNING", "COMPLETED"},
               "the job starts once the budget covers it")  # fmt: skip
    slurm.run("scancel", job)


def test_an_allocation_used_to_the_full_is_blocked_by_the_next_export(slurm, lumi):
    acme = account_name("acme")
    allocation = make_allocation(account=acme, users=("alice",), gpu_hours=1)
    apply_commands(slurm, lumi)
    assert submit(slurm, acme, "alice", "--wrap", "true")[0]
    # An hour of GPU time, as an import would have recorded it (the GPU-second figures of real
    # jobs are tests/slurm/test_usage.py's).
    make_usage_record(allocation=allocation, gpu_seconds=3600)
    call_command("check_thresholds", stdout=io.StringIO())
    allocation.refresh_from_db()
    assert allocation.is_exhausted

    script = apply_commands(slurm, lumi)

    assert (
        f"sacctmgr -i modify account where name={acme} cluster=lumi set GrpSubmitJobs=0" in script
    )
    job, said = submit(slurm, acme, "alice", "--wrap", "true")
    assert job is None and "AssocGrpSubmitJobsLimit" in said


def test_the_commands_export_leaves_nothing_for_slurm_check(slurm, lumi):
    make_allocation(account=account_name("acme"), users=("alice", "bob"), gpu_hours=10)
    make_allocation(account=account_name("beta"), users=("bob",), gpu_hours=2)

    apply_commands(slurm, lumi)

    assert slurm_check() == (0, [])
