"""Accounting input for the usage tests: the shared samples, sacct text, import_usage run on it."""

from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"

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

# Allocations whose imports these tests check start early enough to hold every job of the shared
# samples (the oldest, the PBS log, is from 2009) and of the lines written here: a job counts
# against an allocation only when it starts inside the allocation's window.
SINCE = date(2009, 1, 1)

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
