"""Celery tasks of the vetting workflow: each takes an id, fetches, and calls the workflow."""

import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from allocations.locks import task_lock

logger = logging.getLogger(__name__)

# A submission younger than this may still have its own task on the way; older ones are swept.
SWEEP_SUBMITTED_AFTER = timedelta(minutes=2)
# A screening that has not finished by then lost its worker.
SWEEP_SCREENING_AFTER = timedelta(minutes=15)
SWEEP_BATCH = 200

# Publishing retries for a moment; after that the sweep takes over, so nothing is lost.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.5, "interval_step": 1, "interval_max": 3}


def enqueue(task, *args) -> bool:
    """Publish `task`; False (logged) when the broker stays unreachable."""
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY)
    except (BrokerError, ConnectionError, TimeoutError, OSError):
        logger.exception("Could not queue %s%r; the periodic sweep will retry", task.name, args)
        return False
    return True


def screening_enqueue(application_id: int) -> bool:
    """Called on commit of a submission."""
    return enqueue(application_screen, application_id)


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def application_screen(application_id: int) -> str:
    from .workflow import application_screen as screen

    application = screen(application_id=application_id)
    return f"{application.state}" if application else "skipped: not waiting for screening"


@shared_task(acks_late=True)
def screening_sweep() -> str:
    """Every few minutes: re-queue applications a lost message or a dead worker left behind."""
    from .models import Application

    with task_lock("screening_sweep", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            return "skipped: another sweep is running"
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


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=8,
)
def assignment_notify(assignment_id: int) -> int:
    from .notifications import assignment_mail

    return assignment_mail(assignment_id=assignment_id)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=8,
)
def decision_notify(decision_id: int) -> int:
    from .notifications import decision_mail

    return decision_mail(decision_id=decision_id)
