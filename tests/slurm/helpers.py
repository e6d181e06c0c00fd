"""What the Slurm tests share: running exports' scripts, submitting, waiting, reading sacct."""

from __future__ import annotations

import io
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.slurm_cluster import SlurmCluster, SlurmError

# Cluster users the tests submit as; "mallory" exists on the machine but in no allocation.
UNIX_USERS = ("alice", "bob", "mallory")
SACCT_FIELDS = (
    "JobIDRaw,JobID,Account,User,Partition,State,Submit,Start,End,ElapsedRaw,AllocTRES,NNodes,"
    "ConsumedEnergyRaw,JobName"
)
RUN = secrets.token_hex(3)


def account_name(base: str) -> str:
    """A Slurm account name of this test run: 'acme' -> 'acme_3fa9c1'."""
    return f"{base}_{RUN}"


def run_script(cluster: SlurmCluster, script: str) -> str:
    """Runs an export's /bin/sh script (or the QOS lines of a flat file) against the cluster."""
    done = subprocess.run(
        ["sh", "-e"], input=script, capture_output=True, text=True, env=cluster.env(),
        cwd="/tmp", timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SlurmError(f"script exited {done.returncode}: {done.stderr or done.stdout}")
    return done.stdout


def qos_lines(flat_file: str) -> str:
    """What `sed -n 's/^#qos //p' FILE` gives: the commands to run before `sacctmgr load`."""
    return "".join(
        line.removeprefix("#qos ") + "\n"
        for line in flat_file.splitlines()
        if line.startswith("#qos ")
    )


def submit(cluster: SlurmCluster, account: str, user: str, *args: str) -> tuple[str | None, str]:
    """(job id, '') when sbatch takes the job, (None, what sbatch said) when it refuses."""
    done = cluster.run(
        "sbatch", "--parsable", "--output=/dev/null", "-A", account, "-t", "1", *args,
        user=user, check=False,
    )  # fmt: skip
    if done.returncode == 0:
        return done.stdout.strip().split(";")[0], ""
    return None, done.stderr.strip()


def wait_until(check: Callable[[], object], what: str, timeout: float = 30, poll: float = 0.5):
    """Polls `check` until it returns something true, and returns that; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not so after {timeout}s")
        time.sleep(poll)


def sacct_text(cluster: SlurmCluster, account: str) -> str:
    """Allocations of `account`'s jobs of the last day as import_usage reads them: UTC, every
    requeued run (-D), parsable with a header."""
    done = subprocess.run(
        ["sacct", "--allusers", "--parsable2", "--allocations", "--duplicates",
         "--starttime=now-1days", "--endtime=now", f"--accounts={account}",
         f"--format={SACCT_FIELDS}"],
        capture_output=True, text=True, timeout=60, check=True, cwd="/tmp",
        env={**cluster.env(), "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"},
    )  # fmt: skip
    return done.stdout


def gpu_seconds_in(text: str) -> list[tuple[str, int]]:
    """(JobID, GPUs x ElapsedRaw) for each line of sacct_text, sorted: Slurm's own figures."""
    lines = text.splitlines()
    header = lines[0].split("|")
    result = []
    for line in lines[1:]:
        row = dict(zip(header, line.split("|"), strict=True))
        tres = dict(item.split("=", 1) for item in row["AllocTRES"].split(",") if "=" in item)
        result.append((row["JobID"], int(tres.get("gres/gpu", 0)) * int(row["ElapsedRaw"] or 0)))
    return sorted(result)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def slurm_check(*arguments: str) -> tuple[int, list[str]]:
    """(exit status, difference lines) of manage.py slurm_check --cluster lumi."""
    out = io.StringIO()
    try:
        call_command(
            "slurm_check", "--cluster", "lumi", *arguments, stdout=out, stderr=io.StringIO()
        )
    except SystemExit as exit_:
        return exit_.code, out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()
