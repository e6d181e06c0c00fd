from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from allocations.models import Allocation
from systems.models import Cluster
from usage.models import UsageRecord


def usage_attribute(*, cluster: Cluster | None = None, allocation: Allocation | None = None) -> int:
    """Attach unmatched usage records to the allocation their account now has. Returns the count.

    Runs when an allocation gets its account (`allocation`), and at the start of every import for
    allocations made any other way (admin, ORM, a migration of data). A record keeps the
    partition its job ran on (compute is counted at that partition's peak); one whose accounting
    named no partition takes the allocation's.
    """
    records = UsageRecord.objects.filter(allocation__isnull=True)
    if allocation is not None:
        return records.filter(
            cluster_id=allocation.cluster_id, account_key=allocation.account_key
        ).update(
            allocation=allocation,
            partition_id=Coalesce(F("partition_id"), Value(allocation.partition_id)),
        )
    owner = Allocation.objects.filter(
        cluster_id=OuterRef("cluster_id"), account_key=OuterRef("account_key")
    )
    records = records.filter(Exists(owner))
    if cluster is not None:
        records = records.filter(cluster=cluster)
    return records.update(
        allocation_id=Subquery(owner.values("id")[:1]),
        partition_id=Coalesce(F("partition_id"), Subquery(owner.values("partition_id")[:1])),
    )
