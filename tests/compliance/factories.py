"""Builders for the split-run tests: related companies, their allocations, timed jobs."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import count

from django.core.management import call_command
from django.utils import timezone

from allocations.models import Allocation
from organisations.models import Membership, Organisation
from systems.models import Partition

_jobs = count(1)

# The line `check_thresholds` prints per alert raised (CONTRACT.md).
LINE = re.compile(
    r"^alert level=(\S+) scope=(allocation|model|organisation) subject=(\S+) "
    r"value=(\S+) threshold=(\S+)$"
)


def raised(*args: str) -> list[tuple[str, str, str, str, str]]:
    lines = check_lines(*args)
    assert lines[-1] == f"alerts={len(lines) - 1}"
    parsed = []
    for line in lines[:-1]:
        match = LINE.match(line)
        assert match, line
        parsed.append(match.groups())
    return parsed


# What a confidential report in the tests says.
REPORT_TEXT = "Acme and its subsidiary train one 70B model on LUMI and Leonardo at once."


def organisation(registration_id: str, *, controlled_by: str = "", owner=None) -> Organisation:
    org = Organisation.objects.create(
        legal_name=f"Company {registration_id}",
        country=registration_id[:2],
        registration_id=registration_id,
        controlled_by_registration_id=controlled_by,
    )
    if owner is not None:
        Membership.objects.create(organisation=org, user=owner, role=Membership.Role.OWNER)
    return org


def allocation(org, cluster: str, account: str, gpu_hours: int = 500_000, **extra) -> Allocation:
    part = Partition.objects.get(cluster__name=cluster)
    today = timezone.localdate()
    return Allocation.objects.create(
        organisation=org,
        project=f"Project {account}",
        cluster=part.cluster,
        partition=part,
        account=account,
        gpu_hours=gpu_hours,
        start=extra.pop("start", today - timedelta(days=30)),
        end=extra.pop("end", today + timedelta(days=150)),
        state=extra.pop("state", Allocation.State.ACTIVE),
        **extra,
    )


def job(alloc: Allocation, gpus: int, start: datetime, end: datetime | None, **extra):
    """A job of `gpus` scheduler GPUs from `start` to `end` (None: still running)."""
    from usage.models import UsageRecord

    n = next(_jobs)
    finish = end or timezone.now()
    seconds = int((finish - start).total_seconds())
    return UsageRecord.objects.create(
        cluster=alloc.cluster,
        job_key=f"{n}",
        job_id=f"{n}",
        account=alloc.account,
        allocation=alloc,
        partition=extra.pop("partition", alloc.partition),
        state="RUNNING" if end is None else "COMPLETED",
        running=end is None,
        start=start,
        end=end,
        elapsed_seconds=seconds,
        gpus=gpus,
        gpu_seconds=gpus * seconds,
        **extra,
    )


def midnight(days_ago: int) -> datetime:
    """Midnight (UTC) `days_ago` days before today."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def check_lines(*args: str) -> list[str]:
    out = StringIO()
    call_command("check_thresholds", *args, stdout=out)
    return out.getvalue().splitlines()


def job_with_flop(alloc: Allocation, flop: float, *, days_ago: int = 20, gpus: int = 100):
    """A finished job whose compute, at the policy's utilisation 0.4, is `flop`."""
    seconds = round(flop / (alloc.partition.peak_flops * 0.4) / gpus)
    start = midnight(days_ago)
    return job(alloc, gpus, start, start + timedelta(seconds=seconds))


def planned(reference: str, flop: float, **extra) -> dict:
    """Allocation fields of a granted plan declaring `flop`."""
    return {
        "plan_reference": reference,
        "planned_flop": flop,
        "planned_hardware_flop": extra.pop("hardware_flop", flop),
        "planned_parameters": extra.pop("parameters", 7_000_000_000),
        "planned_tokens": extra.pop("tokens", 200_000_000_000),
    }
