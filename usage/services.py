from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocations.models import Allocation
from core.locks import advisory_key, process_alive, this_process
from systems.models import Cluster
from usage.models import UsageImport, UsageRecord


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
        # Only the accounts that have an allocation, named: most unattributed records are of
        # accounts hpcgate does not grant, and the partial index reaches the others directly.
        keys = Allocation.objects.filter(cluster=cluster).values_list("account_key", flat=True)
        records = records.filter(cluster=cluster, account_key__in=list(keys))
    owner = Allocation.objects.filter(
        cluster_id=OuterRef("cluster_id"), account_key=OuterRef("account_key")
    ).order_by()
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


# --- import runs and the processes that run them -----------------------------------------------

# Runs this process is importing now; any other run it is named on has ended in fact.
_ACTIVE_RUNS: set[int] = set()
# Without PostgreSQL's locks, a run of another machine that wrote nothing for this long is
# taken for gone (batches commit every few seconds while an import reads its input).
STALE_AFTER = timedelta(hours=1)
INTERRUPTED_REASON = (
    "The process importing it ended before it finished (killed, crashed or shut down). What its "
    "committed batches wrote is kept; importing the same input again completes it."
)


def _run_lock_key(run: UsageImport) -> int:
    return advisory_key(f"hpcgate:usage-import:{run.pk}")


def usage_import_hold(run: UsageImport) -> None:
    """Name this process on `run` and hold it for as long as the process lives: call inside the
    transaction that makes the run `running`, so nobody ever sees it running and unheld. On
    PostgreSQL a session advisory lock, which ends with this process's connection."""
    host, _, pid = this_process().rpartition(":")
    run.host, run.pid, run.heartbeat_at = host, int(pid), timezone.now()
    UsageImport.objects.filter(pk=run.pk).update(
        host=run.host, pid=run.pid, heartbeat_at=run.heartbeat_at
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_run_lock_key(run)])
    _ACTIVE_RUNS.add(run.pk)


def usage_import_release(run: UsageImport) -> None:
    _ACTIVE_RUNS.discard(run.pk)
    if connection.vendor == "postgresql" and connection.is_usable():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_run_lock_key(run)])


def _run_alive(run: UsageImport) -> bool:
    if f"{run.host}:{run.pid}" == this_process():
        return run.pk in _ACTIVE_RUNS
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            key = _run_lock_key(run)
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if not cursor.fetchone()[0]:
                return True  # its process holds it
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return False
    alive = process_alive(run.host, run.pid)
    if alive is not None:
        return alive
    last = run.heartbeat_at or run.started_at
    return timezone.now() - last < STALE_AFTER


def usage_imports_sweep(*, cluster: Cluster | None = None) -> list[int]:
    """Mark `interrupted` the runs left `running` by a process that is gone; returns their ids.

    Runs at the start of every import and with the spool's periodic task, so a killed import
    shows as interrupted, never as running for ever. A run that is merely slow stays running:
    its process is asked, not its clock (PostgreSQL: its session lock; else its pid on this
    machine, or an hour without a batch on another)."""
    runs = UsageImport.objects.filter(status=UsageImport.Status.RUNNING)
    if cluster is not None:
        runs = runs.filter(cluster=cluster)
    gone = [run.pk for run in runs.only("pk", "host", "pid", "heartbeat_at", "started_at")
            if not _run_alive(run)]  # fmt: skip
    if gone:
        UsageImport.objects.filter(pk__in=gone, status=UsageImport.Status.RUNNING).update(
            status=UsageImport.Status.INTERRUPTED, finished_at=timezone.now(),
            error=INTERRUPTED_REASON,
        )  # fmt: skip
    return gone
