"""E-mails of the vetting workflow: assignments to reviewers, decisions to applicants."""

from django.urls import reverse
from django.utils import timezone

from core.mail import mail_each, site_url
from vetting.models import Decision, ReviewAssignment


def assignment_mail(*, assignment_id: int) -> int:
    """Tell the reviewer; the mail names the call and title only, details wait for the COI."""
    assignment = (
        ReviewAssignment.objects.select_related("reviewer", "application__call")
        .filter(pk=assignment_id)
        .first()
    )
    if (
        assignment is None
        or assignment.notified_at is not None
        or assignment.state != ReviewAssignment.State.PENDING
    ):
        return 0
    url = site_url(reverse("admin:vetting_reviewassignment_change", args=[assignment.pk]))
    context = {"assignment": assignment, "application": assignment.application, "url": url}
    sent = mail_each(
        "vetting/email/assignment",
        context,
        [assignment.reviewer.email] if assignment.reviewer.email else [],
    )
    _mark_sent(ReviewAssignment, assignment.pk)
    return sent


def decision_mail(*, decision_id: int) -> int:
    """Tell the organisation's members and the PI; never who reviewed or decided."""
    decision = (
        Decision.objects.select_related("application__organisation", "application__call")
        .prefetch_related("grants__partition__cluster", "allocations")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None or decision.notified_at is not None:
        return 0
    application = decision.application
    recipients = set(
        application.organisation.members.filter(is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if application.pi_email:
        recipients.add(application.pi_email)
    url = site_url(reverse("vetting:detail", args=[application.pk]))
    context = {"decision": decision, "application": application, "url": url}
    sent = mail_each(f"vetting/email/decision_{decision.outcome}", context, recipients)
    _mark_sent(Decision, decision.pk)
    return sent


def _mark_sent(model, pk: int) -> None:
    """After sending, so that a failed send is retried by the task or the sweep; a worker lost
    in between may send twice, which beats an e-mail that never comes."""
    model.objects.filter(pk=pk).update(notified_at=timezone.now())
