"""Allocation writes: grants, state transitions, cluster users and change requests.

Every transition is one function here, guarded by the current state under a row lock, and leaves
an ``AllocationEvent`` with who, when and why. Views, admin actions, API endpoints, commands and
Celery tasks all call these functions; none of them writes an allocation's state itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from allocations.models import (
    Allocation,
    AllocationEvent,
    AllocationUser,
    ChangeRequest,
    DeclaredPlan,
)
from allocations.names import account_key, account_name_problem, user_name_problem
from allocations.notifications import ACTIVE_ACTIONS, BLOCKED_ACTIONS
from allocations.signals import allocation_account_assigned, allocation_window_changed
from core.errors import TransitionError as BaseTransitionError
from systems.models import AccessMode, Partition

State = Allocation.State
# The threshold check's exhaustion e-mails go to the broker this many to a message.
EVENTS_PER_MESSAGE = 500


class TransitionError(BaseTransitionError):
    """A state change that the allocation's current state does not allow."""


class AccountTakenError(ValidationError):
    """The Slurm account name is already used on the cluster."""


def account_name_check(account: str) -> str:
    problem = account_name_problem(account)
    if problem:
        raise ValidationError(problem + ".")
    return account


def cluster_user_check(username: str) -> str:
    problem = user_name_problem(username)
    if problem:
        raise ValidationError(problem + ".")
    return username


def _grant_check(*, gpu_hours: int, start: date, end: date) -> None:
    if isinstance(gpu_hours, bool) or not isinstance(gpu_hours, int) or gpu_hours <= 0:
        raise ValidationError("Granted GPU-hours must be a whole number above 0.")
    if end < start:
        raise ValidationError("An allocation must end on or after its start.")


def _locked(allocation: Allocation) -> Allocation:
    return Allocation.objects.select_for_update().get(pk=allocation.pk)


def allocation_event_record(
    allocation: Allocation,
    action: str,
    *,
    actor=None,
    reason: str = "",
    from_state: str = "",
    to_state: str = "",
) -> AllocationEvent:
    event = AllocationEvent.objects.create(
        allocation=allocation,
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
    )
    if action in (*ACTIVE_ACTIONS, *BLOCKED_ACTIONS):
        _after_commit("allocation_event_notify", event.pk)
    return event


def _after_commit(task_name: str, *args) -> None:
    """Queue one of allocations.tasks with `args` once the transaction commits."""
    from allocations import tasks

    tasks.after_commit(getattr(tasks, task_name), *args)


@dataclass(frozen=True)
class _Rule:
    to: str
    allowed_from: tuple[str, ...]
    action: str
    refusal: str


def _transition(
    allocation: Allocation,
    rule: _Rule,
    *,
    actor,
    reason: str,
    guard: Callable[[Allocation], str | None] | None = None,
) -> Allocation:
    with transaction.atomic():
        locked = _locked(allocation)
        if locked.state not in rule.allowed_from:
            raise TransitionError(
                rule.refusal.format(
                    account=locked.account, state=locked.get_state_display().lower()
                )
            )
        problem = guard(locked) if guard else None
        if problem:
            raise TransitionError(problem)
        from_state = locked.state
        locked.state = rule.to
        locked.save(update_fields=["state", "updated_at"])
        allocation_event_record(
            locked, rule.action, actor=actor, reason=reason, from_state=from_state, to_state=rule.to
        )
    allocation.refresh_from_db()
    return allocation


def allocation_create(
    *,
    organisation,
    project: str,
    partition: Partition,
    account: str,
    gpu_hours: int,
    start: date,
    end: date,
    model_name: str = "",
    access_mode: AccessMode | None = None,
    users: Sequence[str] = (),
    actor=None,
    reason: str = "",
    today: date | None = None,
    state: str | None = None,
    action: str = "created",
    plan: DeclaredPlan | None = None,
) -> Allocation:
    """Create one allocation, the one way every allocation comes to exist.

    A new grant (no `state`) is active at once when its start date has come, and may not end in
    the past. An allocation brought over from another tool (`import_allocations`) keeps the
    `state` it had there, whatever its dates. `plan` is what the applicant declared for the
    grant; imports have none.
    """
    today = today or timezone.localdate()
    account_name_check(account)
    _grant_check(gpu_hours=gpu_hours, start=start, end=end)
    if state is None and end < today:
        raise ValidationError(f"The allocation would end on {end:%Y-%m-%d}, before today.")
    usernames = sorted({cluster_user_check(name) for name in users})
    if state is None:
        state = State.ACTIVE if start <= today else State.SCHEDULED
    with transaction.atomic():
        taken = Allocation.objects.filter(
            cluster_id=partition.cluster_id, account_key=account_key(account)
        )
        if taken.exists():
            raise AccountTakenError(
                f"Slurm account '{account}' is already used on cluster {partition.cluster.name}."
            )
        allocation = Allocation.objects.create(
            organisation=organisation,
            project=project,
            cluster_id=partition.cluster_id,
            partition=partition,
            account=account,
            gpu_hours=gpu_hours,
            start=start,
            end=end,
            state=state,
            model_name=model_name or "",
            access_mode=access_mode,
            **(plan.fields() if plan else {}),
        )
        AllocationUser.objects.bulk_create(
            AllocationUser(allocation=allocation, username=name, added_by=actor)
            for name in usernames
        )
        allocation_event_record(allocation, action, actor=actor, reason=reason, to_state=state)
        allocation_account_assigned.send(sender=Allocation, allocation=allocation)
    return allocation


def account_base_name(organisation_name: str) -> str:
    """'Aurora AI Oy' -> 'aurora_ai_oy': ASCII, lower case, safe for Slurm, room for a counter."""
    ascii_name = (
        unicodedata.normalize("NFKD", organisation_name).encode("ascii", "ignore").decode().lower()
    )
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name).strip("_")[:40].rstrip("_")
    if not base or not base[0].isalpha():
        base = f"org_{base}".rstrip("_")
    return base


def account_name_generate(*, cluster_id: int, organisation_name: str) -> str:
    base = account_base_name(organisation_name)
    taken = set(
        Allocation.objects.filter(
            cluster_id=cluster_id, account__startswith=f"{base}_"
        ).values_list("account", flat=True)
    )
    counter = 1
    while f"{base}_{counter}" in taken:
        counter += 1
    return f"{base}_{counter}"


def allocations_grant(
    *,
    organisation,
    project: str,
    model_name: str,
    access_mode: AccessMode | None,
    grants: Sequence[tuple[Partition, int]],
    start: date,
    end: date,
    users: Sequence[str],
    actor,
    reason: str = "granted by the call decision",
    plan: DeclaredPlan | None = None,
) -> list[Allocation]:
    """Turn an approved application into one allocation per granted partition.

    Account names are generated from the organisation name plus a counter, unique per cluster;
    the operator may rename them until the first export. Every allocation keeps the declared
    `plan` of the whole grant.
    """
    if not grants:
        raise ValidationError("A grant needs at least one partition with GPU-hours.")
    allocations = []
    with transaction.atomic():
        for partition, gpu_hours in grants:
            for _attempt in range(5):
                account = account_name_generate(
                    cluster_id=partition.cluster_id, organisation_name=organisation.legal_name
                )
                try:
                    with transaction.atomic():
                        allocation = allocation_create(
                            organisation=organisation,
                            project=project,
                            partition=partition,
                            account=account,
                            gpu_hours=gpu_hours,
                            start=start,
                            end=end,
                            model_name=model_name,
                            access_mode=access_mode,
                            users=users,
                            actor=actor,
                            reason=reason,
                            plan=plan,
                        )
                    break
                except (IntegrityError, AccountTakenError):
                    # Another grant took the same name between our read and write: try the next.
                    continue
            else:
                raise ValidationError(f"Could not find a free Slurm account name for {account}.")
            allocations.append(allocation)
    return allocations


_ACTIVATE = _Rule(
    State.ACTIVE,
    (State.SCHEDULED,),
    "activated",
    "Allocation {account} is {state}; only a scheduled allocation can be activated.",
)


_SUSPEND = _Rule(
    State.SUSPENDED,
    (State.ACTIVE,),
    "suspended",
    "Allocation {account} is {state}; only an active allocation can be suspended.",
)


_REACTIVATE = _Rule(
    State.ACTIVE,
    (State.SUSPENDED,),
    "reactivated",
    "Allocation {account} is {state}; only a suspended allocation can be reactivated.",
)


_EXPIRE = _Rule(
    State.EXPIRED,
    (State.SCHEDULED, State.ACTIVE, State.SUSPENDED),
    "expired",
    "Allocation {account} is {state} and cannot expire.",
)


_CLOSE = _Rule(
    State.CLOSED,
    (State.SCHEDULED, State.ACTIVE, State.SUSPENDED, State.EXPIRED),
    "closed",
    "Allocation {account} is already {state}.",
)


def allocation_activate(*, allocation: Allocation, actor=None, reason: str = "") -> Allocation:
    return _transition(allocation, _ACTIVATE, actor=actor, reason=reason)


def allocation_suspend(*, allocation: Allocation, actor=None, reason: str = "") -> Allocation:
    return _transition(allocation, _SUSPEND, actor=actor, reason=reason)


def allocation_reactivate(
    *, allocation: Allocation, actor=None, reason: str = "", today: date | None = None
) -> Allocation:
    today = today or timezone.localdate()

    def not_ended(locked: Allocation) -> str | None:
        if locked.end < today:
            return (
                f"Allocation {locked.account} ended on {locked.end:%Y-%m-%d}; "
                "extend it before reactivating."
            )
        return None

    return _transition(allocation, _REACTIVATE, actor=actor, reason=reason, guard=not_ended)


def allocation_expire(*, allocation: Allocation, actor=None, reason: str = "") -> Allocation:
    return _transition(allocation, _EXPIRE, actor=actor, reason=reason)


def allocation_close(*, allocation: Allocation, actor=None, reason: str = "") -> Allocation:
    """Closed for good (final report in, or withdrawn); from any state but closed."""
    return _transition(allocation, _CLOSE, actor=actor, reason=reason)


def allocation_mark_exhausted(
    *, allocation: Allocation, actor=None, reason: str = "grant used up"
) -> Allocation:
    """Set by the threshold check: the account is blocked in the scheduler until cleared.

    Raises ``TransitionError`` when the mark is already set or the allocation is closed.
    """
    with transaction.atomic():
        locked = _locked(allocation)
        if locked.exhausted_at is not None:
            raise TransitionError(f"Allocation {locked.account} is already marked exhausted.")
        if locked.state == State.CLOSED:
            raise TransitionError(f"Allocation {locked.account} is closed.")
        allocations_mark_exhausted(reasons={locked.pk: reason}, actor=actor)
    allocation.refresh_from_db()
    return allocation


def allocations_mark_exhausted(*, reasons: dict[int, str], actor=None) -> list[int]:
    """The threshold check's set-based form of `allocation_mark_exhausted`: mark every
    allocation in `reasons` (id -> reason) that is neither marked already nor closed, in a
    fixed number of queries. Returns the ids it marked."""
    if not reasons:
        return []
    with transaction.atomic():
        ids = list(
            Allocation.objects.select_for_update()
            .filter(pk__in=reasons, exhausted_at=None)
            .exclude(state=State.CLOSED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        Allocation.objects.filter(pk__in=ids).update(exhausted_at=now, updated_at=now)
        events = AllocationEvent.objects.bulk_create(
            AllocationEvent(allocation_id=pk, action="exhausted", actor=actor, reason=reasons[pk])
            for pk in ids
        )
        event_ids = [event.pk for event in events]
        for first in range(0, len(event_ids), EVENTS_PER_MESSAGE):
            _after_commit("allocation_events_notify", event_ids[first : first + EVENTS_PER_MESSAGE])
    return ids


def _exhausted_clear(locked: Allocation, *, actor, reason: str) -> None:
    locked.exhausted_at = None
    locked.save(update_fields=["exhausted_at", "updated_at"])
    allocation_event_record(locked, "exhausted_cleared", actor=actor, reason=reason)


def allocation_clear_exhausted(
    *, allocation: Allocation, actor=None, reason: str = ""
) -> Allocation:
    with transaction.atomic():
        locked = _locked(allocation)
        if locked.exhausted_at is None:
            raise TransitionError(f"Allocation {locked.account} is not marked exhausted.")
        _exhausted_clear(locked, actor=actor, reason=reason)
    allocation.refresh_from_db()
    return allocation


def allocation_rename_account(
    *, allocation: Allocation, account: str, actor=None, reason: str = ""
) -> Allocation:
    """Rename the Slurm account; refused once exported, since Slurm would keep the old one."""
    account_name_check(account)
    with transaction.atomic():
        locked = _locked(allocation)
        if locked.first_exported_at is not None:
            raise TransitionError(
                f"Allocation {locked.account} was exported to the scheduler on "
                f"{locked.first_exported_at:%Y-%m-%d}; its account can no longer be renamed."
            )
        if locked.account == account:
            return allocation
        taken = Allocation.objects.filter(
            cluster_id=locked.cluster_id, account_key=account_key(account)
        )
        if taken.exclude(pk=locked.pk).exists():
            raise ValidationError(f"Slurm account '{account}' is already used on this cluster.")
        old = locked.account
        locked.account = account
        locked.save(update_fields=["account", "updated_at"])
        allocation_event_record(
            locked, "renamed", actor=actor, reason=reason or f"{old} -> {account}"
        )
        allocation_account_assigned.send(sender=Allocation, allocation=locked)
    allocation.refresh_from_db()
    return allocation


def allocation_windows_refresh(*, allocations: Iterable[Allocation]) -> int:
    """Recompute the usage window of `allocations` after what it depends on beyond their own
    dates changed (the call's grace, the site's time zone); returns how many moved."""
    moved = 0
    for allocation in allocations:
        window = allocation.window()
        if window == (allocation.usage_from, allocation.usage_until):
            continue
        with transaction.atomic():
            allocation.usage_from, allocation.usage_until = window
            Allocation.objects.filter(pk=allocation.pk).update(
                usage_from=window[0], usage_until=window[1]
            )
            allocation_window_changed.send(sender=Allocation, allocation=allocation)
        moved += 1
    return moved


def _users_editable(locked: Allocation) -> None:
    if locked.state == State.CLOSED:
        raise TransitionError(f"Allocation {locked.account} is closed; its users cannot change.")


def allocation_users_set(
    *, allocation: Allocation, usernames: Iterable[str], actor=None, reason: str = ""
) -> tuple[list[str], list[str]]:
    """Make the cluster users exactly ``usernames``; returns (added, removed)."""
    wanted = {cluster_user_check(name) for name in usernames}
    with transaction.atomic():
        locked = _locked(allocation)
        _users_editable(locked)
        current = set(locked.users.values_list("username", flat=True))
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if removed:
            locked.users.filter(username__in=removed).delete()
        AllocationUser.objects.bulk_create(
            AllocationUser(allocation=locked, username=name, added_by=actor) for name in added
        )
        for name in added:
            allocation_event_record(locked, "user_added", actor=actor, reason=reason or name)
        for name in removed:
            allocation_event_record(locked, "user_removed", actor=actor, reason=reason or name)
    return added, removed


def allocation_user_add(
    *, allocation: Allocation, username: str, actor=None, reason: str = ""
) -> AllocationUser:
    cluster_user_check(username)
    with transaction.atomic():
        locked = _locked(allocation)
        _users_editable(locked)
        if locked.users.filter(username=username).exists():
            raise ValidationError(f"'{username}' is already a user of {locked.account}.")
        user = AllocationUser.objects.create(allocation=locked, username=username, added_by=actor)
        allocation_event_record(locked, "user_added", actor=actor, reason=reason or username)
    return user


def allocation_user_remove(
    *, allocation: Allocation, username: str, actor=None, reason: str = ""
) -> None:
    with transaction.atomic():
        locked = _locked(allocation)
        _users_editable(locked)
        deleted, _ = locked.users.filter(username=username).delete()
        if not deleted:
            raise ValidationError(f"'{username}' is not a user of {locked.account}.")
        allocation_event_record(locked, "user_removed", actor=actor, reason=reason or username)


def allocation_dates_apply(*, today: date | None = None) -> dict[str, int]:
    """Activate allocations whose start has come and expire those whose end has passed."""
    today = today or timezone.localdate()
    counts = {"activated": 0, "expired": 0}
    to_expire = Allocation.objects.filter(
        state__in=Allocation.LIVE_STATES, end__lt=today
    ).values_list("pk", flat=True)
    for pk in list(to_expire):
        try:
            allocation_expire(
                allocation=Allocation(pk=pk), reason=f"end date passed ({today:%Y-%m-%d})"
            )
        except TransitionError:
            continue  # changed meanwhile by someone else; their change stands
        counts["expired"] += 1
    to_activate = Allocation.objects.filter(
        state=State.SCHEDULED, start__lte=today, end__gte=today
    ).values_list("pk", flat=True)
    for pk in list(to_activate):
        try:
            allocation_activate(
                allocation=Allocation(pk=pk), reason=f"start date reached ({today:%Y-%m-%d})"
            )
        except TransitionError:
            continue
        counts["activated"] += 1
    return counts


def change_request_submit(
    *,
    allocation: Allocation,
    kind: str,
    justification: str,
    requested_by,
    extra_gpu_hours: int = 0,
    new_end: date | None = None,
) -> ChangeRequest:
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError("Explain why the change is needed.")
    if allocation.state in (State.EXPIRED, State.CLOSED):
        raise TransitionError(
            f"Allocation {allocation.account} is {allocation.get_state_display().lower()}; "
            "apply for a new allocation instead."
        )
    if kind == ChangeRequest.Kind.EXTENSION:
        if new_end is None or new_end <= allocation.end:
            raise ValidationError(
                f"An extension needs a new end date after {allocation.end:%Y-%m-%d}."
            )
        extra_gpu_hours = 0
    elif kind == ChangeRequest.Kind.TOP_UP:
        if isinstance(extra_gpu_hours, bool) or not isinstance(extra_gpu_hours, int):
            raise ValidationError("Extra GPU-hours must be a whole number above 0.")
        if extra_gpu_hours <= 0:
            raise ValidationError("Extra GPU-hours must be a whole number above 0.")
        new_end = None
    else:
        raise ValidationError(f"Unknown change request kind '{kind}'.")
    with transaction.atomic():
        locked = _locked(allocation)
        pending = locked.change_requests.filter(kind=kind, state=ChangeRequest.State.PENDING)
        if pending.exists():
            raise TransitionError(
                f"A {ChangeRequest.Kind(kind).label.lower()} request for {locked.account} "
                "is already waiting for a decision."
            )
        change = ChangeRequest.objects.create(
            allocation=locked,
            kind=kind,
            extra_gpu_hours=extra_gpu_hours,
            new_end=new_end,
            justification=justification,
            requested_by=requested_by,
        )
        allocation_event_record(
            locked, f"{kind}_requested", actor=requested_by, reason=justification
        )
        _after_commit("change_request_received_notify", change.pk)
    return change


def _change_request_locked(change_request: ChangeRequest) -> ChangeRequest:
    locked = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if locked.state != ChangeRequest.State.PENDING:
        raise TransitionError(f"This request was already {locked.get_state_display().lower()}.")
    return locked


def change_request_approve(
    *, change_request: ChangeRequest, actor, reason: str = ""
) -> ChangeRequest:
    """Apply the requested extension or top-up; a top-up also lifts the exhausted mark."""
    with transaction.atomic():
        change = _change_request_locked(change_request)
        allocation = _locked(change.allocation)
        if allocation.state in (State.EXPIRED, State.CLOSED):
            raise TransitionError(
                f"Allocation {allocation.account} is "
                f"{allocation.get_state_display().lower()}; the request can only be denied."
            )
        if change.kind == ChangeRequest.Kind.EXTENSION:
            old = allocation.end
            allocation.end = change.new_end
            allocation.save(update_fields=["end", "updated_at"])
            allocation_window_changed.send(sender=Allocation, allocation=allocation)
            detail = f"end {old:%Y-%m-%d} -> {change.new_end:%Y-%m-%d}"
        else:
            old = allocation.gpu_hours
            allocation.gpu_hours = old + change.extra_gpu_hours
            allocation.save(update_fields=["gpu_hours", "updated_at"])
            detail = f"GPU-hours {old} -> {allocation.gpu_hours}"
            if allocation.exhausted_at is not None:
                _exhausted_clear(allocation, actor=actor, reason="top-up approved")
        change.state = ChangeRequest.State.APPROVED
        change.decided_by = actor
        change.decided_at = timezone.now()
        change.decision_reason = reason
        change.save(update_fields=["state", "decided_by", "decided_at", "decision_reason"])
        allocation_event_record(
            allocation,
            f"{change.kind}_approved",
            actor=actor,
            reason=f"{detail}; {reason}" if reason else detail,
        )
        _after_commit("change_request_decided_notify", change.pk)
    change_request.refresh_from_db()
    return change_request


def change_request_deny(*, change_request: ChangeRequest, actor, reason: str) -> ChangeRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give the applicant a reason for the denial.")
    with transaction.atomic():
        change = _change_request_locked(change_request)
        change.state = ChangeRequest.State.DENIED
        change.decided_by = actor
        change.decided_at = timezone.now()
        change.decision_reason = reason
        change.save(update_fields=["state", "decided_by", "decided_at", "decision_reason"])
        allocation_event_record(
            change.allocation, f"{change.kind}_denied", actor=actor, reason=reason
        )
        _after_commit("change_request_decided_notify", change.pk)
    change_request.refresh_from_db()
    return change_request
