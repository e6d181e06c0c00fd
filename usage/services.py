from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from allocations.models import Allocation
from systems.models import Cluster
from usage.models import UsageRecord


def _counted_by(allocation: Allocation) -> Q:
    """Records whose job counts against `allocation` by its usage window: started inside it,
    or, not started yet, submitted inside it (Allocation.counts, in SQL)."""
    if allocation.usage_from is None:
        return Q()
    span = {"gte": allocation.usage_from, "lt": allocation.usage_until}
    started = Q(**{f"start__{op}": value for op, value in span.items()})
    submitted = Q(start__isnull=True, **{f"submit__{op}": value for op, value in span.items()})
    return started | submitted | Q(start__isnull=True, submit__isnull=True)


def usage_attribute(*, cluster: Cluster | None = None, allocation: Allocation | None = None) -> int:
    """Attach usage records to the allocation of their account when their job counts against
    it (see Allocation.counts). Returns how many were attached.

    Runs when an allocation gets its account or its window moves (`allocation`; records of it
    that the window no longer holds are let go), and at the start of every import for
    allocations made any other way (admin, ORM, a migration of data). A record outside every
    window stays unattributed: kept, reported, never counted against a grant. A record keeps
    the partition its job ran on (compute is counted at that partition's peak); one whose
    accounting named no partition takes the allocation's.
    """
    records = UsageRecord.objects.filter(allocation__isnull=True)
    if allocation is not None:
        counted = _counted_by(allocation)
        UsageRecord.objects.filter(allocation=allocation).exclude(counted).update(allocation=None)
        return (
            records.filter(cluster_id=allocation.cluster_id, account_key=allocation.account_key)
            .filter(counted)
            .update(
                allocation=allocation,
                partition_id=Coalesce(F("partition_id"), Value(allocation.partition_id)),
            )
        )
    if cluster is not None:
        records = records.filter(cluster=cluster)
    owner = Allocation.objects.filter(
        cluster_id=OuterRef("cluster_id"), account_key=OuterRef("account_key")
    )
    unbounded = Q(usage_from__isnull=True)
    # One statement per way a job's time is known: its start, else its submit time, else none.
    owners = [
        (
            Q(start__isnull=False),
            owner.filter(
                unbounded | Q(usage_from__lte=OuterRef("start"), usage_until__gt=OuterRef("start"))
            ),
        ),
        (
            Q(start__isnull=True, submit__isnull=False),
            owner.filter(
                unbounded
                | Q(usage_from__lte=OuterRef("submit"), usage_until__gt=OuterRef("submit"))
            ),
        ),
        (Q(start__isnull=True, submit__isnull=True), owner),
    ]
    attached = 0
    for which, counting in owners:
        attached += (
            records.filter(which)
            .filter(Exists(counting))
            .update(
                allocation_id=Subquery(counting.values("id")[:1]),
                partition_id=Coalesce(
                    F("partition_id"), Subquery(counting.values("partition_id")[:1])
                ),
            )
        )
    return attached
