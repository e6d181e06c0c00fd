import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        # The page is public: the reason names the kind of failure, the log has the details
        # (host names, users), which are for the operator only.
        logger.exception("health check: the database does not answer")
        return f"database: does not answer ({exc.__class__.__name__})"
    return None


def _broker_problem() -> str | None:
    if not settings.CELERY_BROKER_CONFIGURED:
        return None
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as exc:  # noqa: BLE001
        logger.exception("health check: the broker does not answer")
        return f"broker: does not answer ({exc.__class__.__name__})"
    return None


@never_cache
@require_GET
def livez(request):
    """Liveness: the process answers requests. Nothing outside it is asked, so an outage of the
    database or the broker never makes an orchestrator restart a web container that works."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request):
    """Readiness: the database answers, and the broker when one is configured."""
    problems = [p for p in (_database_problem(), _broker_problem()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    checks = ["database"] + (["broker"] if settings.CELERY_BROKER_CONFIGURED else [])
    return JsonResponse({"status": "ok", "checks": checks})
