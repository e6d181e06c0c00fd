"""Factories for organisations and allocations, shared by the allocation test files."""

from datetime import date, timedelta

from django.utils import timezone

from allocations import services
from allocations.models import Allocation
from organisations.models import Membership, Organisation
from systems.models import Partition


def make_organisation(
    name="Acme AI Oy", *, country="FI", registration_id=None, owner=None, member=None
) -> Organisation:
    organisation = Organisation.objects.create(
        legal_name=name,
        country=country,
        registration_id=registration_id or f"{country}{Organisation.objects.count() + 1:08d}",
    )
    if owner is not None:
        Membership.objects.create(organisation=organisation, user=owner, role=Membership.Role.OWNER)
    if member is not None:
        Membership.objects.create(
            organisation=organisation, user=member, role=Membership.Role.MEMBER
        )
    return organisation


def partition(cluster="lumi") -> Partition:
    return Partition.objects.select_related("cluster").filter(cluster__name=cluster).first()


def make_allocation(
    organisation=None,
    *,
    account="acme_llm",
    cluster="lumi",
    gpu_hours=50_000,
    users=("alice", "bob"),
    start=None,
    end=None,
    project="Finnish legal LLM",
    model_name="",
    actor=None,
) -> Allocation:
    today = timezone.localdate()
    return services.allocation_create(
        organisation=organisation or make_organisation(),
        project=project,
        partition=partition(cluster),
        account=account,
        gpu_hours=gpu_hours,
        start=start or today - timedelta(days=1),
        end=end or today + timedelta(days=90),
        model_name=model_name,
        users=users,
        actor=actor,
    )


def days(n: int) -> date:
    return timezone.localdate() + timedelta(days=n)
