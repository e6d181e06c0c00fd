from celery import shared_task

from core.tasks import periodic_task


@periodic_task("usage_spool_import")
def usage_spool_import() -> str:
    """Every 5 minutes: mark interrupted the imports whose process is gone, queue again the
    pushed uploads nobody is importing, and import complete accounting files dropped in
    USAGE_SPOOL_DIR/<cluster>/ (and any a killed worker left in processing/)."""
    from usage.services import usage_imports_sweep
    from usage.spool import usage_spool_import as import_spool
    from usage.uploads import usage_uploads_forget_orphans, usage_uploads_requeue

    usage_imports_sweep()
    files = import_spool()
    requeued = usage_uploads_requeue()
    usage_uploads_forget_orphans()
    return f"files={len(files)}" + (f" requeued={len(requeued)}" if requeued else "")


# A pushed month of a large centre is a few minutes of work; the default limit is for tasks
# that should take seconds. A run killed at the limit is queued again, three times at most.
@shared_task(acks_late=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def usage_upload_import(run_id: int) -> str:
    """Import a pushed upload (see usage.uploads)."""
    from usage.uploads import usage_upload_import as import_upload

    return import_upload(run_id=run_id)
