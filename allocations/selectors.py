"""Allocation reads: who may see what, and what the scheduler should hold."""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocations.models import Allocation, AllocationUser, ChangeRequest
from allocations.slurm import SlurmAccount, clean_text, gpu_hours_to_minutes
from organisations.models import Membership
from systems.estimates import SECONDS_PER_HOUR, UseProjection, use_projection
from systems.models import Cluster, ThresholdPolicy


def allocations_visible_to(user) -> QuerySet[Allocation]:
    """Staff with the view permission see all; everyone else their organisations' allocations."""
    allocations = Allocation.objects.select_related(
        "organisation", "cluster", "partition", "access_mode"
    )
    if not user.is_authenticated:
        return allocations.none()
    if user.is_active and user.is_staff and user.has_perm("allocations.view_allocation"):
        return allocations
    return allocations.filter(organisation__membership__user=user)


def allocations_for_member(user) -> QuerySet[Allocation]:
    """What an applicant's own pages show: their organisations' allocations, staff or not, each
    with `used_gpu_seconds` from the usage records attributed to it (one query). The records
    point at their allocation, so the sum needs no import of the usage app."""
    return (
        Allocation.objects.select_related("organisation", "cluster__site", "partition")
        .filter(organisation__membership__user=user)
        .annotate(used_gpu_seconds=Coalesce(Sum("usage_records__gpu_seconds"), 0))
    )


def allocation_ids_for_member(user) -> QuerySet:
    """The ids of allocations_for_member in the order of the list page, without the usage
    sums: what a page of the list is cut from before its rows are summed."""
    return (
        Allocation.objects.filter(organisation__membership__user=user)
        .order_by(*Allocation._meta.ordering, "pk")
        .values_list("pk", flat=True)
    )


def use_of(allocation: Allocation, *, today: date | None = None) -> UseProjection:
    """GPU-hours used against the grant, and where they head by the end date at the rate so
    far; `allocation` comes from allocations_for_member (it carries `used_gpu_seconds`)."""
    return use_projection(
        used=allocation.used_gpu_seconds / SECONDS_PER_HOUR,
        granted=float(allocation.gpu_hours),
        start=allocation.start,
        end=allocation.end,
        today=today or timezone.localdate(),
    )


def use_warning_share(policy: ThresholdPolicy | None) -> float:
    """From which used share the pages warn: the policy's first allocation alert level."""
    levels = (policy.allocation_alert_percentages if policy else None) or [75]
    return min(levels) / 100


def allocation_detail_for_member(user, pk: int) -> Allocation:
    """One allocation with users and change requests; raises ``Allocation.DoesNotExist``."""
    return (
        allocations_for_member(user)
        .prefetch_related(
            Prefetch("users", queryset=AllocationUser.objects.order_by("username")),
            Prefetch(
                "change_requests",
                queryset=ChangeRequest.objects.select_related("requested_by", "decided_by"),
            ),
        )
        .get(pk=pk)
    )


def allocation_managed_by(user, allocation: Allocation) -> bool:
    """Owners of the organisation manage its cluster users and ask for changes."""
    return Membership.objects.filter(
        organisation_id=allocation.organisation_id, user=user, role=Membership.Role.OWNER
    ).exists()


def change_requests_visible_to(user) -> QuerySet[ChangeRequest]:
    """Staff allowed to view change requests see all; others their organisations' ones."""
    requests = ChangeRequest.objects.select_related(
        "allocation__cluster", "requested_by", "decided_by"
    )
    if not user.is_authenticated:
        return requests.none()
    if user.is_active and user.is_staff and user.has_perm("allocations.view_changerequest"):
        return requests
    return requests.filter(allocation__organisation__membership__user=user).distinct()


def allocations_for_scheduler(cluster: Cluster) -> QuerySet[Allocation]:
    """Everything Slurm should know about on ``cluster``.

    A closed allocation that never reached the scheduler is left out; one that did stays in the
    export as a blocked account, because ``sacctmgr load`` never removes anything and deleting the
    association would lose its usage history.
    """
    return (
        Allocation.objects.filter(cluster=cluster)
        .exclude(Q(state=Allocation.State.CLOSED) & Q(first_exported_at__isnull=True))
        .select_related("organisation")
        .prefetch_related(Prefetch("users", queryset=AllocationUser.objects.order_by("username")))
        .order_by("account")
    )


def slurm_accounts_for(cluster: Cluster) -> list[SlurmAccount]:
    """What hpcgate says ``cluster``'s Slurm should hold, account by account."""
    return scheduler_accounts(cluster)[0]


def cluster_users_by_allocation(allocations: QuerySet[Allocation]) -> dict[int, list[str]]:
    """The cluster users of `allocations`, sorted, by allocation id: one query."""
    users: dict[int, list[str]] = {}
    for allocation_id, username in (
        AllocationUser.objects.filter(allocation__in=allocations.values("pk"))
        .order_by("username")
        .values_list("allocation_id", "username")
    ):
        users.setdefault(allocation_id, []).append(username)
    return users


def scheduler_accounts(cluster: Cluster) -> tuple[list[SlurmAccount], tuple[int, ...]]:
    """slurm_accounts_for, with the ids of the allocations the accounts come from: the
    allocations of allocations_for_scheduler read as plain rows, in two queries whatever their
    number (a centre's export holds thousands)."""
    allocations = allocations_for_scheduler(cluster).select_related(None).prefetch_related(None)
    users = cluster_users_by_allocation(allocations)
    accounts, ids = [], []
    rows = allocations.values_list(
        "pk", "account", "project", "organisation__legal_name", "gpu_hours", "state", "exhausted_at"
    )
    for pk, account, project, organisation, gpu_hours, state, exhausted_at in rows:
        ids.append(pk)
        accounts.append(
            SlurmAccount(
                name=account,
                description=clean_text(project),
                organization=clean_text(organisation),
                gpu_minutes=gpu_hours_to_minutes(gpu_hours),
                users=tuple(users.get(pk, ())),
                # Allocation.is_blocked, from the row
                blocked=state != Allocation.State.ACTIVE or exhausted_at is not None,
            )
        )
    return accounts, tuple(ids)
