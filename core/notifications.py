"""The e-mails people are told to expect, each sent once, and the ones they may turn off.

Every kind is listed here, with whether it can be turned off: what a person must know (a
decision, a blocked allocation, a threshold alert) always goes out. The apps that send them
call `notify` from a Celery task with the thing's id, after the change is committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat

from core.mail import mail_each
from core.models import NotificationOptOut, SentNotification

STAFF = "staff"
EVERYONE = "everyone"


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    required: bool
    # Whose preferences page lists it: "everyone", or the name of a role.
    audience: str = EVERYONE


KINDS: tuple[Kind, ...] = (
    Kind("application_submitted", "A receipt when an application is submitted", False),
    Kind("application_decision", "The decision on an application", True),
    Kind("change_request_decided", "The decision on an extension or top-up you asked for", True),
    Kind("allocation_active", "An allocation becomes active", False),
    Kind("allocation_blocked", "An allocation is blocked: suspended or used up", True),
    Kind(
        "allocation_expiry",
        "Reminders 30 and 7 days before an allocation ends, and on its last day",
        False,
    ),
    Kind("threshold_alert", "A usage or AI Act threshold alert on your allocations", True),
    Kind("change_request_received", "A new extension or top-up request", False, "call manager"),
    Kind("review_assignment", "A new review assignment", True, "reviewer"),
)
KIND_BY_KEY = {kind.key: kind for kind in KINDS}


def kinds_for(user) -> list[Kind]:
    """The kinds a person's preferences page shows: everyone's and their roles'."""
    roles = set(user.groups.values_list("name", flat=True))
    return [kind for kind in KINDS if kind.audience == EVERYONE or kind.audience in roles]


def opted_out(user) -> set[str]:
    return set(NotificationOptOut.objects.filter(user=user).values_list("kind", flat=True))


def preferences_set(*, user, enabled: Iterable[str]) -> None:
    """Turn the optional kinds in `enabled` on and the person's other optional kinds off."""
    enabled = set(enabled)
    off = {kind.key for kind in kinds_for(user) if not kind.required} - enabled
    with transaction.atomic():
        NotificationOptOut.objects.filter(user=user).exclude(kind__in=off).delete()
        NotificationOptOut.objects.bulk_create(
            [NotificationOptOut(user=user, kind=kind) for kind in sorted(off)],
            ignore_conflicts=True,
        )


def recipients_of(kind: str, users: Iterable) -> set[str]:
    """The addresses of the active `users` who want `kind`."""
    users = [user for user in users if user.is_active and user.email]
    if not KIND_BY_KEY[kind].required:
        out = set(
            NotificationOptOut.objects.filter(
                kind=kind, user_id__in=[user.pk for user in users]
            ).values_list("user_id", flat=True)
        )
        users = [user for user in users if user.pk not in out]
    return {user.email for user in users}


def notify(*, kind: str, key: str, template: str, context: dict, users: Iterable) -> int:
    """Send `kind` about `key` once, one message per person who wants it; returns the count.

    The record that it was sent is written with the sending, in one transaction: a mail server
    that fails rolls it back, so the task's retry sends it; a second call finds it and sends
    nothing.
    """
    recipients = recipients_of(kind, users)
    with transaction.atomic():
        record, created = SentNotification.objects.get_or_create(kind=kind, key=key)
        if not created:
            return 0
        sent = mail_each(template, context, recipients)
        record.recipients = sent
        record.save(update_fields=["recipients"])
    return sent


def key_of(prefix: str, *fields: str):
    """The SQL of a notification key: "prefix:<field>[:<field>...]" of each row."""
    parts = [Value(prefix)]
    for name in fields:
        parts += [Value(":"), Cast(name, CharField())]
    return Concat(*parts, output_field=CharField())


def unsent(queryset: QuerySet, *, kind: str, key) -> QuerySet:
    """Ids of the rows of `queryset` whose `kind` notification (keyed by the expression `key`,
    see key_of) has not gone out: for the sweeps that queue again what a lost message left."""
    sent = SentNotification.objects.filter(kind=kind, key=OuterRef("notification_key"))
    return (
        queryset.annotate(notification_key=key).exclude(Exists(sent)).values_list("pk", flat=True)
    )
