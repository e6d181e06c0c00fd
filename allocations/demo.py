"""Demo allocations for seed_demo: safe to run again, and in either order with vetting's seed."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from organisations.models import Membership, Organisation

from .models import Allocation, Partition
from .services import allocation_create

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
    return [f"Demo allocations: {total} ({created} new) for Aurora AI Oy and Lince Labs SL."]
