"""E-mails of the vetting workflow: assignments to reviewers, decisions to applicants."""

from django.urls import reverse
from django.utils import timezone

from core.mail import mail_each, site_url
from core.notifications import notify
from vetting.models import Application, ApplicationEvent, Decision, ReviewAssignment


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


def submission_receipt_mail(*, application_id: int) -> int:
    """A receipt to whoever submitted: what was submitted, when, and what happens next."""
    application = (
        Application.objects.select_related("organisation", "call", "access_mode")
        .filter(pk=application_id)
        .first()
    )
    submitted = (
        ApplicationEvent.objects.select_related("actor")
        .filter(application_id=application_id, to_state=Application.State.SUBMITTED)
        .order_by("-at")
        .first()
    )
    if application is None or submitted is None or submitted.actor is None:
        return 0
    return notify(
        kind="application_submitted",
        key=f"application:{application.pk}",
        template="vetting/email/submitted",
        context={
            "application": application,
            "submitted_at": application.submitted_at,
            "url": site_url(reverse("vetting:detail", args=[application.pk])),
        },
        users=[submitted.actor],
    )


def _mark_sent(model, pk: int) -> None:
    """After sending, so that a failed send is retried by the task or the sweep; a worker lost
    in between may send twice, which beats an e-mail that never comes."""
    model.objects.filter(pk=pk).update(notified_at=timezone.now())
