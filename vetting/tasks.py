"""Celery tasks of the vetting workflow: each takes an id, fetches, and calls the workflow."""

from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from core.tasks import mail_task, periodic_task, publish

# A submission younger than this may still have its own task on the way; older ones are swept.
SWEEP_SUBMITTED_AFTER = timedelta(minutes=2)
# A screening that has not finished by then lost its worker.
SWEEP_SCREENING_AFTER = timedelta(minutes=15)
SWEEP_BATCH = 200

# A notification younger than this may still have its own task on the way.
SWEEP_MAIL_AFTER = timedelta(minutes=10)


def screening_enqueue(application_id: int) -> bool:
    """Called on commit of a submission."""
    return publish(application_screen, application_id)


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def application_screen(application_id: int) -> str:
    from vetting.services.review import application_screen as screen

    application = screen(application_id=application_id)
    return f"{application.state}" if application else "skipped: not waiting for screening"


@periodic_task("screening_sweep")
def screening_sweep() -> str:
    """Every few minutes: re-queue applications a lost message or a dead worker left behind."""
    from vetting.models import Application

    now = timezone.now()
    stuck = list(
        Application.objects.filter(
            Q(state=Application.State.SUBMITTED, submitted_at__lt=now - SWEEP_SUBMITTED_AFTER)
            | Q(state=Application.State.SCREENING, updated_at__lt=now - SWEEP_SCREENING_AFTER)
        )
        .order_by("submitted_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    queued = sum(screening_enqueue(pk) for pk in stuck)
    return f"queued={queued} stuck={len(stuck)}"


@mail_task
def assignment_notify(assignment_id: int) -> int:
    from vetting.notifications import assignment_mail

    return assignment_mail(assignment_id=assignment_id)


@mail_task
def submission_receipt_notify(application_id: int) -> int:
    from vetting.notifications import submission_receipt_mail

    return submission_receipt_mail(application_id=application_id)


@mail_task
def decision_notify(decision_id: int) -> int:
    from vetting.notifications import decision_mail

    return decision_mail(decision_id=decision_id)


@periodic_task("vetting_mail_sweep")
def mail_sweep() -> str:
    """Every few minutes: queue again the assignment, decision and receipt e-mails whose
    message was lost (broker down at commit, worker gone). The mail functions send each once."""
    from vetting.models import Decision, ReviewAssignment

    before = timezone.now() - SWEEP_MAIL_AFTER
    assignments = ReviewAssignment.objects.filter(
        notified_at=None, state=ReviewAssignment.State.PENDING, assigned_at__lt=before
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    decisions = Decision.objects.filter(notified_at=None, decided_at__lt=before).values_list(
        "pk", flat=True
    )[:SWEEP_BATCH]
    from core.notifications import key_of, unsent
    from vetting.models import Application

    submitted = Application.objects.filter(submitted_at__lt=before).order_by("-submitted_at")
    receipts = list(
        unsent(
            submitted.filter(submitted_at__gte=before - timedelta(days=7)),
            kind="application_submitted",
            key=key_of("application", "pk"),
        )[:SWEEP_BATCH]
    )
    queued = sum(publish(assignment_notify, pk) for pk in assignments)
    queued += sum(publish(decision_notify, pk) for pk in decisions)
    queued += sum(publish(submission_receipt_notify, pk) for pk in receipts)
    return f"queued={queued}"
