"""The grant is a hard budget: usage counted against the allocation's NoDecay QOS does not shrink
while the same jobs' usage on the account's association decays with PriorityDecayHalfLife (one
minute on the test cluster)."""

import re

import pytest

from allocations.exports import export_create
from systems.models import Cluster
from tests.factories import make_allocation
from tests.slurm.helpers import account_name, run_script, submit, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.django_db]

GPU_MINUTES_USED = re.compile(r"GrpTRESMins=\S*?gres/gpu=[^(,]+\((\d+)\)")


def qos_usage(slurm, name: str) -> tuple[float, int]:
    """(UsageRaw, GPU-minutes used) of a QOS, as slurmctld counts them against its limit."""
    out = slurm.scontrol("-o", "show", "assoc_mgr", "flags=qos", f"qos={name}")
    line = next(line for line in out.splitlines() if line.startswith(f"QOS={name}("))
    raw = float(re.search(r"UsageRaw=([\d.]+)", line).group(1))
    return raw, int(GPU_MINUTES_USED.search(line).group(1))


def account_usage(slurm, name: str) -> tuple[float, int]:
    """(UsageRaw, GPU-minutes used) of the account's own association."""
    out = slurm.scontrol("-o", "show", "assoc_mgr", "flags=assoc", f"accounts={name}")
    line = next(line for line in out.splitlines() if f"Account={name} UserName= " in line)
    raw = float(re.search(r"UsageRaw/Norm/Efctv=([\d.]+)/", line).group(1))
    return raw, int(GPU_MINUTES_USED.search(line).group(1))


def test_usage_against_the_budget_qos_does_not_decay(slurm, reference_data):
    acme = account_name("budget")
    make_allocation(account=acme, users=("alice",), gpu_hours=10)
    run_script(
        slurm, export_create(fmt="commands", cluster=Cluster.objects.get(name="lumi")).content
    )
    job = wait_until(
        lambda: submit(
            slurm, acme, "alice", "-N", "2", "--gres=gpu:8", "-t", "2", "--wrap", "sleep 15"
        )[0],
        "alice can submit",
    )
    slurm.wait_for_state(job, {"COMPLETED"}, timeout=90)
    # 2 nodes x 8 GPUs x 15 s = 4 GPU-minutes on the QOS; the account's association has those
    # minutes too, less what has decayed already while the job ran.
    budget = wait_until(lambda: (usage := qos_usage(slurm, acme))[1] >= 4 and usage, "QOS usage")
    account = wait_until(lambda: (usage := account_usage(slurm, acme))[0] > 0 and usage, "usage")

    # At least one decay period (PriorityCalcPeriod=1 minute, half-life one minute) later...
    decayed = wait_until(
        lambda: (usage := account_usage(slurm, acme))[0] <= 0.6 * account[0] and usage,
        "the account's usage decays",
        timeout=150,
        poll=5,
    )

    # ... the account's usage has shrunk, the budget's has not moved.
    assert decayed[1] <= account[1]
    assert qos_usage(slurm, acme) == budget
    assert budget[1] == 4
