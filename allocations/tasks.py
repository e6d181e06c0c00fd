from core.tasks import mail_task, periodic_task, publish


@periodic_task("allocation_dates_apply")
def allocation_dates_apply() -> str:
    """Daily: activate allocations whose start date has come, expire those past their end."""
    from allocations.services import allocation_dates_apply as apply

    counts = apply()
    return f"activated={counts['activated']} expired={counts['expired']}"


@periodic_task("allocation_expiry_reminders")
def allocation_expiry_reminders() -> str:
    """Daily: remind owners 30 and 7 days before an allocation ends, and on its last day."""
    from allocations.notifications import expiry_reminders_send

    return f"sent={expiry_reminders_send()}"


@mail_task
def change_request_received_notify(change_request_id: int) -> int:
    from allocations.notifications import change_request_received_mail

    return change_request_received_mail(change_request_id=change_request_id)


@mail_task
def change_request_decided_notify(change_request_id: int) -> int:
    from allocations.notifications import change_request_decided_mail

    return change_request_decided_mail(change_request_id=change_request_id)


@mail_task
def allocation_event_notify(event_id: int) -> int:
    from allocations.notifications import allocation_event_mail

    return allocation_event_mail(event_id=event_id)


@mail_task
def allocation_events_notify(event_ids: list[int]) -> int:
    """The e-mails of many events in one broker message: the threshold check can block
    thousands of allocations in one run. Each e-mail is still sent once, retries included."""
    from allocations.notifications import allocation_event_mail

    return sum(allocation_event_mail(event_id=pk) for pk in event_ids)


@periodic_task("allocation_mail_sweep")
def allocation_mail_sweep() -> str:
    """Every few minutes: queue again the allocation e-mails whose message was lost (broker
    down at commit, worker gone); each is sent once whatever happens."""
    from datetime import timedelta

    from django.utils import timezone

    from allocations.notifications import unsent_mail

    before = timezone.now() - timedelta(minutes=10)
    queued = 0
    for task_name, ids in unsent_mail(before=before, batch=200).items():
        task = globals()[task_name]
        queued += sum(publish(task, pk) for pk in ids)
    return f"queued={queued}"


def after_commit(task, *args) -> None:
    """Queue `task(*args)` once the caller's transaction commits."""
    from django.db import transaction

    transaction.on_commit(lambda: publish(task, *args))
