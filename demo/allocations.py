"""Demo allocations for seed_demo: safe to run again, and in either order with vetting's seed."""

import random
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from allocations.models import Allocation
from allocations.services import allocation_create
from organisations.models import Membership, Organisation
from systems.models import Partition
from usage.models import UsageImport

# The intake seed creates the same organisations by name; whichever runs first creates them.
DEMO_ORGANISATIONS = (
    # registration id, legal name, country, owner
    ("FI-AURORA-0001", "Aurora AI Oy", "FI", "applicant"),
    ("ES-LINCE-0002", "Lince Labs SL", "ES", "applicant2"),
)
DEMO_ALLOCATIONS = (
    # registration id, cluster, partition, account, GPU-hours, project, model, users,
    # days since the start
    ("FI-AURORA-0001", "lumi", "standard-g", "aurora_ai_1", 40_000,
     "Finnish-Swedish legal assistant", "", ("aino", "mikko"), 30),
    ("FI-AURORA-0001", "leonardo", "boost_usr_prod", "aurora_ai_1", 120_000,
     "Aurora base model pre-training", "aurora-nordic-7b", ("aino",), 10),
    ("ES-LINCE-0002", "marenostrum5", "acc", "lince_labs_1", 25_000,
     "Catalan speech recognition", "lince-asr-1b", ("lucia",), -7),
)  # fmt: skip


def demo_organisation(registration_id: str, name: str, country: str, owner) -> Organisation:
    organisation = (
        Organisation.objects.filter(registration_id=registration_id).first()
        or Organisation.objects.filter(legal_name=name).order_by("pk").first()
        or Organisation.objects.create(
            legal_name=name, country=country, registration_id=registration_id
        )
    )
    if owner is not None:
        Membership.objects.get_or_create(
            organisation=organisation, user=owner, defaults={"role": Membership.Role.OWNER}
        )
    return organisation


def demo_allocations_seed() -> list[str]:
    users = get_user_model().objects.in_bulk(
        [owner for *_, owner in DEMO_ORGANISATIONS], field_name="username"
    )
    organisations = {
        registration_id: demo_organisation(registration_id, name, country, users.get(owner))
        for registration_id, name, country, owner in DEMO_ORGANISATIONS
    }
    today = timezone.localdate()
    created = 0
    for row in DEMO_ALLOCATIONS:
        registration_id, cluster, partition_name, account, hours, project, model, names, ago = row
        if Allocation.objects.filter(cluster__name=cluster, account=account).exists():
            continue
        partition = Partition.objects.filter(cluster__name=cluster, name=partition_name).first()
        if partition is None:
            continue
        start = today - timedelta(days=ago)
        allocation_create(
            organisation=organisations[registration_id],
            project=project,
            partition=partition,
            account=account,
            gpu_hours=hours,
            start=start,
            end=start + timedelta(days=180),
            model_name=model,
            users=names,
            reason="demo data",
        )
        created += 1
    total = Allocation.objects.filter(account__in=[row[3] for row in DEMO_ALLOCATIONS]).count()
    lines = [f"Demo allocations: {total} ({created} new) for Aurora AI Oy and Lince Labs SL."]
    return lines + demo_usage_seed()


# cluster, account, jobs, GPUs per job, hours per job, share of jobs with measured energy
DEMO_USAGE = (
    ("lumi", "aurora_ai_1", 56, (16, 32, 48), (6, 30), 0.0),
    ("leonardo", "aurora_ai_1", 36, (32, 64, 128), (4, 12), 0.5),
)
SACCT_HEADER = (
    "JobID|JobIDRaw|Account|User|Partition|Submit|Start|End|ElapsedRaw|AllocTRES|State|"
    "ConsumedEnergyRaw|NNodes|JobName"
)


def demo_sacct_lines(
    *,
    account: str,
    partition: Partition,
    users: list[str],
    jobs: int,
    gpus,
    hours,
    measured_share: float,
    since: datetime,
    seed: int,
) -> list[str]:
    """Plausible `sacct -P` output (UTC), with step lines and one job still running."""
    rng = random.Random(seed)
    lines = [SACCT_HEADER]
    # Jobs overlap, as on a real cluster, and all start before now.
    step = (timezone.now() - since) * 0.9 / jobs
    start = since
    for n in range(jobs):
        job = 4_100_000 + seed * 1_000 + n
        count = rng.choice(gpus)
        elapsed = int(rng.uniform(*hours) * 3600)
        submit = start - timedelta(minutes=rng.randint(1, 90))
        running = n == jobs - 1
        end = (
            "Unknown"
            if running
            else (start + timedelta(seconds=elapsed)).strftime("%Y-%m-%dT%H:%M:%S")
        )
        nodes = max(1, count // partition.gpus_per_node)
        tres = f"billing={count},cpu={count * 8},gres/gpu={count},mem={count * 64}G,node={nodes}"
        joules = ""
        if not running and rng.random() < measured_share:
            joules = str(int(elapsed * count * partition.power_watts * rng.uniform(0.55, 0.8)))
        fields = [
            str(job),
            str(job),
            account,
            rng.choice(users),
            partition.name,
            submit.strftime("%Y-%m-%dT%H:%M:%S"),
            start.strftime("%Y-%m-%dT%H:%M:%S"),
            end,
            str(elapsed),
            tres,
            "RUNNING" if running else rng.choice(["COMPLETED"] * 5 + ["FAILED"]),
            joules,
            str(nodes),
            rng.choice(["pretrain", "sft", "eval", "tokenise"]),
        ]
        lines.append("|".join(fields))
        if not running:
            lines.append("|".join([f"{job}.batch", f"{job}.batch", *fields[2:]]))
        start += step * rng.uniform(0.6, 1.4)
    return lines


def demo_usage_seed() -> list[str]:
    """Accounting for the demo allocations, through the real importer; only once."""
    from usage.importer import usage_import

    done = []
    for seed, (cluster, account, jobs, gpus, hours, measured) in enumerate(DEMO_USAGE, start=1):
        allocation = (
            Allocation.objects.select_related("partition", "cluster")
            .filter(cluster__name=cluster, account=account)
            .first()
        )
        if allocation is None or allocation.usage_records.exists():
            continue
        since = datetime.combine(allocation.start, time(8), tzinfo=timezone.get_current_timezone())
        lines = demo_sacct_lines(
            account=account,
            partition=allocation.partition,
            users=list(allocation.users.values_list("username", flat=True)) or ["demo"],
            jobs=jobs,
            gpus=gpus,
            hours=hours,
            measured_share=measured,
            since=since,
            seed=seed,
        )
        run = usage_import(
            cluster=allocation.cluster,
            lines=lines,
            tz="UTC",
            source=UsageImport.Source.COMMAND,
            filename="demo",
        )
        done.append(f"{cluster}:{account} {run.summary}")
    if not done:
        return []
    from compliance.monitoring import thresholds_check

    alerts = thresholds_check().alerts
    return [
        f"Demo usage: {'; '.join(done)}",
        f"Threshold check: {len(alerts)} alert(s) " + ", ".join(a.line for a in alerts),
    ]
