from celery import shared_task
from django.conf import settings

from core.locks import task_lock


@shared_task(acks_late=True)
def allocation_dates_apply() -> str:
    """Daily: activate allocations whose start date has come, expire those past their end."""
    from allocations.services import allocation_dates_apply as apply

    with task_lock("allocation_dates_apply", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            return "skipped: another run is in progress"
        counts = apply()
    return f"activated={counts['activated']} expired={counts['expired']}"
