"""E-mails of the vetting workflow: assignments to reviewers, decisions to applicants."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Decision, ReviewAssignment


def _site_url(path: str) -> str:
    return getattr(settings, "SITE_URL", "").rstrip("/") + path


def _send(template: str, context: dict, recipients: list[str]) -> int:
    if not recipients:
        return 0
    subject = render_to_string(f"vetting/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"vetting/email/{template}_body.txt", context)
    send_mail(f"[hpcgate] {subject}", body, None, recipients)
    return len(recipients)


def assignment_mail(*, assignment_id: int) -> int:
    """Tell the reviewer; the mail names the call and title only, details wait for the COI."""
    assignment = (
        ReviewAssignment.objects.select_related("reviewer", "application__call")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.state != ReviewAssignment.State.PENDING:
        return 0
    url = _site_url(reverse("admin:vetting_reviewassignment_change", args=[assignment.pk]))
    context = {"assignment": assignment, "application": assignment.application, "url": url}
    return _send(
        "assignment", context, [assignment.reviewer.email] if assignment.reviewer.email else []
    )


def decision_mail(*, decision_id: int) -> int:
    """Tell the organisation's members and the PI; never who reviewed or decided."""
    decision = (
        Decision.objects.select_related("application__organisation", "application__call")
        .prefetch_related("grants__partition__cluster", "allocations")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None:
        return 0
    application = decision.application
    recipients = set(
        application.organisation.members.filter(is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if application.pi_email:
        recipients.add(application.pi_email)
    url = _site_url(reverse("vetting:detail", args=[application.pk]))
    context = {"decision": decision, "application": application, "url": url}
    return _send(f"decision_{decision.outcome}", context, sorted(recipients))
