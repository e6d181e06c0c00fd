"""Builders shared by the usage tests: a cluster for the real samples, allocations, sacct text."""

from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from allocations.models import Allocation
from organisations.models import Membership, Organisation
from systems.models import Cluster, Partition, Site

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

# Field lists from samples/README.md (what was passed to `sacct --format`).
FOX_FIELDS = (
    "JobID,JobIDRaw,User,Account,State,Start,End,AveCPU,AveDiskRead,AveDiskWrite,AveRSS,"
    "AveVMSize,ElapsedRaw,ExitCode,Layout,MaxRSS,MaxVMSize,MinCPU,ReqCPUS,ReqMem,ReqNodes,"
    "Reservation,Submit,Suspended,SystemCPU,TimelimitRaw,UserCPU,NodeList,Partition,AllocTRES,"
    "Priority,JobName"
)
XDMOD_FIELDS = (
    "JobID,JobIDRaw,Cluster,Partition,QOS,Account,Group,GID,User,UID,Submit,Eligible,Start,End,"
    "Elapsed,ExitCode,State,NNodes,NCPUS,ReqCPUS,ReqMem,ReqTRES,AllocTRES,Timelimit,NodeList,"
    "JobName"
)

HEADER = (
    "JobID|JobIDRaw|Account|User|Partition|State|Submit|Start|End|ElapsedRaw|AllocTRES|NNodes|"
    "ConsumedEnergyRaw|JobName"
)


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"the shared accounting sample {path} is not on this machine")
    return path


def sacct_line(
    job: str,
    *,
    account: str = "acme_llm",
    state: str = "COMPLETED",
    submit: str = "2026-01-05T08:00:00",
    start: str = "2026-01-05T09:00:00",
    end: str = "2026-01-05T11:00:00",
    elapsed: int | str = 7200,
    tres: str = "billing=8,cpu=8,gres/gpu=4,mem=64G,node=1",
    energy: str = "",
    partition: str = "boost_usr_prod",
    user: str = "alice",
    name: str = "train",
    raw: str | None = None,
) -> str:
    raw = raw or job
    return (
        f"{job}|{raw}|{account}|{user}|{partition}|{state}|{submit}|{start}|{end}|{elapsed}|"
        f"{tres}|1|{energy}|{name}"
    )


def sacct_text(*lines: str, header: bool = True) -> str:
    return "\n".join(([HEADER] if header else []) + list(lines)) + "\n"


def fox_cluster() -> Cluster:
    """The Fox cluster (University of Oslo) of the sonar sample, with its GPU partition."""
    site, _ = Site.objects.get_or_create(
        name="University of Oslo",
        defaults={
            "country": "NO",
            "time_zone": "Europe/Oslo",
            "pue": Decimal("1.25"),
            "grid_kg_co2e_per_kwh": Decimal("0.0200"),
        },
    )
    cluster, _ = Cluster.objects.get_or_create(
        name="fox", defaults={"site": site, "display_name": "Fox"}
    )
    Partition.objects.get_or_create(
        cluster=cluster,
        name="accel",
        defaults={
            "accelerator": "NVIDIA A100 40 GB",
            "gpus_per_node": 4,
            "nodes": 10,
            "peak_tflops": Decimal("312.00"),
            "power_watts": 400,
        },
    )
    return cluster


def organisation_for(user=None, name: str = "Acme AI Oy") -> Organisation:
    organisation = Organisation.objects.create(
        legal_name=name, country="FI", registration_id=f"FI{abs(hash(name)) % 10**8:08d}"
    )
    if user is not None:
        Membership.objects.create(organisation=organisation, user=user, role="owner")
    return organisation


def allocation_for(
    cluster: Cluster | str,
    account: str,
    *,
    organisation: Organisation | None = None,
    gpu_hours: int = 1000,
    model_name: str = "",
    partition: Partition | None = None,
) -> Allocation:
    if isinstance(cluster, str):
        cluster = Cluster.objects.get(name=cluster)
    return Allocation.objects.create(
        organisation=organisation or organisation_for(name=f"Org of {account}"),
        project=f"Project {account}",
        cluster=cluster,
        partition=partition or cluster.partitions.order_by("id").first(),
        account=account,
        gpu_hours=gpu_hours,
        start=date(2024, 1, 1),
        end=date(2026, 12, 31),
        state="active",
        model_name=model_name,
    )


def run_command(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_text(
    tmp_path: Path, text: str, *args: str, cluster: str = "leonardo"
) -> tuple[str, str]:
    path = tmp_path / f"pull-{len(list(tmp_path.iterdir()))}.txt"
    path.write_text(text, encoding="utf-8")
    return run_command("import_usage", "--cluster", cluster, *args, str(path))


def summary(out: str) -> dict[str, int]:
    last = out.strip().splitlines()[-1]
    return {key: int(value) for key, value in (part.split("=") for part in last.split())}
