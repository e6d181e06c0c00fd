"""Celery tasks: each takes ids or nothing, fetches, and calls a service."""

from core.tasks import mail_task, periodic_task


@periodic_task("thresholds_check")
def thresholds_check() -> str:
    """Hourly: raise alerts, block exhausted allocations, keep the register of large runs."""
    from compliance.monitoring import thresholds_check as check

    return f"alerts={len(check().alerts)}"


@mail_task
def alerts_notify(alert_ids: list[int]) -> int:
    """E-mail each alert not e-mailed yet to the owners concerned, the call managers and the
    operators."""
    from compliance.monitoring import alert_notify, alert_staff_emails

    staff = alert_staff_emails()
    return sum(alert_notify(alert_id=alert_id, staff=staff) for alert_id in alert_ids)


@mail_task
def large_run_reminder_send(entry_id: int, owed: int) -> int:
    from compliance.monitoring import large_run_reminder

    return large_run_reminder(entry_id=entry_id, owed=owed)


@mail_task
def report_notice_send(report_id: int, what: str) -> int:
    """Tell the governance officers of a new confidential report, or of an addition to one."""
    from compliance.services import report_notice

    return report_notice(report_id=report_id, what=what)
