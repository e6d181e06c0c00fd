from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from allocations.models import Allocation
from systems.models import Cluster
from usage.models import UsageRecord


def usage_attribute(*, cluster: Cluster | None = None) -> int:
    """Attach unmatched usage records to the allocation their account now has. Returns the count.

    Allocation services apply the same rule on creation; this catches allocations made any other
    way (admin, ORM, a migration of data) and runs at the start of every import.
    """
    owner = Allocation.objects.filter(
        cluster_id=OuterRef("cluster_id"), account=OuterRef("account")
    )
    records = UsageRecord.objects.filter(allocation__isnull=True).filter(Exists(owner))
    if cluster is not None:
        records = records.filter(cluster=cluster)
    return records.update(allocation_id=Subquery(owner.values("id")[:1]))


def usage_attribute_unmatched(allocation: Allocation) -> int:
    """Usage imported before the allocation existed belongs to it once its account does."""
    return UsageRecord.objects.filter(
        cluster_id=allocation.cluster_id, account=allocation.account, allocation__isnull=True
    ).update(allocation=allocation, partition=allocation.partition)
