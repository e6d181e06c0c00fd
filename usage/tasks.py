from celery import shared_task
from django.conf import settings

from core.locks import task_lock


@shared_task(acks_late=True)
def usage_spool_import() -> str:
    """Every 5 minutes: import complete accounting files dropped in USAGE_SPOOL_DIR/<cluster>/."""
    from usage.spool import usage_spool_import as import_spool

    with task_lock("usage_spool_import", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            return "skipped: another spool import is running"
        runs = import_spool()
    return f"files={len(runs)}"
