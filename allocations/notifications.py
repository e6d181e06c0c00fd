"""E-mails about allocations: change requests to call managers and their decisions to the
applicants, allocations becoming active or blocked, and reminders before an allocation ends.
Each goes out once (core.notifications); links are absolute, for mail sent by workers."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from allocations.models import Allocation, AllocationEvent, ChangeRequest
from core import roles
from core.mail import site_url
from core.notifications import key_of, notify, unsent
from organisations.models import Membership

# Days before the end date at which owners are reminded; 0 is the last day.
EXPIRY_REMINDER_DAYS = (30, 7, 0)
# Audit actions that tell the owners the allocation can run jobs again, or can no longer.
ACTIVE_ACTIONS = ("activated", "reactivated")
BLOCKED_ACTIONS = ("suspended", "exhausted")
RECEIVED_KEY = "change_request"
EVENT_KEY = "allocation_event"


def _owners(allocation: Allocation):
    return get_user_model().objects.filter(
        membership__organisation_id=allocation.organisation_id,
        membership__role=Membership.Role.OWNER,
    )


def _allocation_url(allocation: Allocation) -> str:
    return site_url(reverse("allocations:detail", args=[allocation.pk]))


def change_request_received_mail(*, change_request_id: int) -> int:
    """Tell the call managers that an extension or top-up waits for their decision."""
    change = _change_request(change_request_id)
    if change is None:
        return 0
    managers = get_user_model().objects.filter(groups__name=roles.CALL_MANAGER)
    return notify(
        kind="change_request_received",
        key=f"{RECEIVED_KEY}:{change.pk}",
        template="allocations/email/change_request_received",
        context={
            "change": change,
            "allocation": change.allocation,
            "url": site_url(reverse("admin:allocations_changerequest_change", args=[change.pk])),
        },
        users=managers,
    )


def change_request_decided_mail(*, change_request_id: int) -> int:
    """Tell whoever asked, and the organisation's owners, what was decided and why."""
    change = _change_request(change_request_id)
    if change is None or change.state == ChangeRequest.State.PENDING:
        return 0
    users = list(_owners(change.allocation))
    if change.requested_by is not None:
        users.append(change.requested_by)
    return notify(
        kind="change_request_decided",
        key=f"{RECEIVED_KEY}:{change.pk}:{change.state}",
        template="allocations/email/change_request_decided",
        context={
            "change": change,
            "allocation": change.allocation,
            "url": _allocation_url(change.allocation),
        },
        users=users,
    )


def _change_request(pk: int) -> ChangeRequest | None:
    return (
        ChangeRequest.objects.select_related(
            "allocation__organisation", "allocation__cluster", "requested_by"
        )
        .filter(pk=pk)
        .first()
    )


def allocation_event_mail(*, event_id: int) -> int:
    """An allocation became active, or was blocked (suspended, or its grant used up)."""
    event = (
        AllocationEvent.objects.select_related(
            "allocation__organisation", "allocation__cluster", "allocation__partition"
        )
        .filter(pk=event_id)
        .first()
    )
    if event is None or event.action not in (*ACTIVE_ACTIONS, *BLOCKED_ACTIONS):
        return 0
    allocation = event.allocation
    kind = "allocation_active" if event.action in ACTIVE_ACTIONS else "allocation_blocked"
    return notify(
        kind=kind,
        key=f"{EVENT_KEY}:{event.pk}",
        template=f"allocations/email/{kind}",
        context={"allocation": allocation, "event": event, "url": _allocation_url(allocation)},
        users=_owners(allocation),
    )


def expiry_reminders_due(*, today: date) -> list[tuple[Allocation, int]]:
    """(allocation, reminder) pairs due today: a live allocation ending within 30 days gets the
    30-day reminder, within 7 days the 7-day one, on its last day the last one. A day the task
    did not run is caught up the next day, and an extension re-arms them (the key has the end)."""
    due = []
    live = Allocation.objects.filter(
        state__in=(Allocation.State.ACTIVE, Allocation.State.SUSPENDED),
        end__gte=today,
        end__lte=today + timedelta(days=max(EXPIRY_REMINDER_DAYS)),
    ).select_related("organisation", "cluster", "partition")
    for allocation in live:
        days_left = (allocation.end - today).days
        reminder = min(days for days in EXPIRY_REMINDER_DAYS if days >= days_left)
        due.append((allocation, reminder))
    return due


def expiry_reminders_send(*, today: date | None = None) -> int:
    """Send the reminders due today; returns the number of messages."""
    today = today or timezone.localdate()
    sent = 0
    for allocation, reminder in expiry_reminders_due(today=today):
        sent += notify(
            kind="allocation_expiry",
            key=f"allocation:{allocation.pk}:end:{allocation.end:%Y-%m-%d}:{reminder}",
            template="allocations/email/allocation_expiry",
            context={
                "allocation": allocation,
                "days_left": (allocation.end - today).days,
                "url": _allocation_url(allocation),
            },
            users=_owners(allocation),
        )
    return sent


def unsent_mail(*, before, batch: int) -> dict[str, list[int]]:
    """What a lost message left unsent, older than `before`: task name -> ids."""
    changes = ChangeRequest.objects.filter(requested_at__lt=before).order_by("pk")
    decided = changes.exclude(state=ChangeRequest.State.PENDING).filter(decided_at__lt=before)
    events = AllocationEvent.objects.filter(at__lt=before, at__gte=before - timedelta(days=7))
    event_key = key_of(EVENT_KEY, "pk")
    active = unsent(
        events.filter(action__in=ACTIVE_ACTIONS), kind="allocation_active", key=event_key
    )
    blocked = unsent(
        events.filter(action__in=BLOCKED_ACTIONS), kind="allocation_blocked", key=event_key
    )
    return {
        "change_request_received_notify": list(
            unsent(changes, kind="change_request_received", key=key_of(RECEIVED_KEY, "pk"))[:batch]
        ),
        "change_request_decided_notify": list(
            unsent(decided, kind="change_request_decided", key=key_of(RECEIVED_KEY, "pk", "state"))[
                :batch
            ]
        ),
        "allocation_event_notify": [*active[:batch], *blocked[:batch]],
    }
