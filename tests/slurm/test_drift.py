"""slurm_check on the real cluster: after someone changed things by hand it reports each of them,
and the commands --repair writes put Slurm back as hpcgate says."""

import pytest

from allocations.exports import export_create
from systems.models import Cluster
from tests.factories import make_allocation
from tests.slurm.helpers import account_name, run_script, slurm_check, submit

pytestmark = [pytest.mark.slurm, pytest.mark.django_db]


def test_hand_changes_are_reported_and_the_repair_undoes_them(slurm, reference_data, tmp_path):
    acme = account_name("drift")
    make_allocation(account=acme, users=("alice", "bob"), gpu_hours=10)
    run_script(
        slurm, export_create(fmt="commands", cluster=Cluster.objects.get(name="lumi")).content
    )
    assert slurm_check() == (0, [])

    # Someone with sacctmgr at hand:
    slurm.sacctmgr("modify", "qos", "where", f"name={acme}", "set", "GrpTRESMins=gres/gpu=99999")
    slurm.sacctmgr("modify", "account", "where", f"name={acme}", "set", "GrpSubmitJobs=0")
    slurm.sacctmgr("add", "user", "name=mallory", f"account={acme}")
    slurm.sacctmgr("modify", "user", "where", "name=bob", f"account={acme}", "set", "qos=normal",
                   "defaultqos=normal")  # fmt: skip
    slurm.sacctmgr("add", "account", f"name={account_name('side')}")

    status, lines = slurm_check("--repair", str(tmp_path / "repair.sh"))

    assert status == 1
    assert lines == [
        f"account {acme}: QOS {acme} has GrpTRESMins gres/gpu=99999, hpcgate grants 600",
        f"account {acme}: user mallory is not in hpcgate",
        f"account {acme}: user bob has QOS normal (default normal), hpcgate expects {acme}",
        f"account {acme}: blocked (GrpSubmitJobs=0), hpcgate says open",
        f"account {account_name('side')}: not in hpcgate (left alone)",
    ]

    run_script(slurm, (tmp_path / "repair.sh").read_text())

    assert slurm_check("--ignore", "side_*") == (0, [])
    assert submit(slurm, acme, "bob", "--wrap", "true")[0]
    assert submit(slurm, acme, "mallory", "--wrap", "true")[0] is None


def test_a_listing_taken_elsewhere_is_read_from_a_file(slurm, reference_data, tmp_path):
    acme = account_name("drift")
    make_allocation(account=acme, users=("alice",), gpu_hours=10)
    run_script(
        slurm, export_create(fmt="commands", cluster=Cluster.objects.get(name="lumi")).content
    )
    slurm.sacctmgr("modify", "qos", "where", f"name={acme}", "set", "Flags=-1")
    # With the header line, as an operator might paste it.
    assoc = slurm.run(
        "sacctmgr", "-P", "show", "assoc", "where", "cluster=lumi",
        "format=Cluster,Account,User,QOS,DefaultQOS,GrpTRESMins,GrpSubmitJobs",
    ).stdout  # fmt: skip
    qos = slurm.run("sacctmgr", "-nP", "show", "qos", "format=Name,Flags,GrpTRESMins").stdout
    (tmp_path / "assoc.txt").write_text(assoc)
    (tmp_path / "qos.txt").write_text(qos)

    status, lines = slurm_check(str(tmp_path / "assoc.txt"), "--qos", str(tmp_path / "qos.txt"))

    assert (status, lines) == (1, [f"account {acme}: QOS {acme} lacks Flags=NoDecay (has none)"])
