"""Celery tasks: each takes ids or nothing, fetches, and calls a service."""

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings

from core.locks import task_lock


@shared_task(acks_late=True)
def thresholds_check() -> str:
    """Hourly: raise alerts, block exhausted allocations, keep the register of large runs."""
    from compliance.monitoring import thresholds_check as check

    with task_lock("thresholds_check", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            return "skipped: another check is running"
        result = check()
    return f"alerts={len(result.alerts)}"


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=8,
)
def alerts_notify(alert_ids: list[int]) -> int:
    """E-mail each alert not e-mailed yet to the owners concerned, the call managers and the
    operators."""
    from compliance.monitoring import alert_notify, alert_staff_emails

    staff = alert_staff_emails()
    return sum(alert_notify(alert_id=alert_id, staff=staff) for alert_id in alert_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=8,
)
def large_run_reminder_send(entry_id: int, owed: int) -> int:
    from compliance.monitoring import large_run_reminder

    return large_run_reminder(entry_id=entry_id, owed=owed)
