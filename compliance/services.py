"""Writes of confidential reports: the report, the reporter's additions, the governance
officer's replies, acknowledgement and outcome. One function per step, each under a row lock
and guarded by the report's status.

Nothing here takes or stores anything about the reporter but what they wrote (encrypted) and
the day they wrote it (compliance.models.MisuseReport).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.confidential import (
    case_key_digest,
    case_key_new,
    seal,
    submission_digest,
)
from compliance.models import MisuseReport, ReportMessage
from core.tasks import publish

Status = MisuseReport.Status


# Enough for a detailed account; a report is text, not an upload.
MESSAGE_MAX_CHARS = 20_000


class ReportClosedError(Exception):
    """The case is closed: nothing more can be added to it."""


@dataclass(frozen=True)
class Submitted:
    """A report just made, with its case key (shown once, never stored); `key` is empty when
    the same form had been sent before (a reload), so no second case was opened."""

    report: MisuseReport
    key: str


def _text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationError("Write what happened.")
    if len(text) > MESSAGE_MAX_CHARS:
        raise ValidationError(f"Keep it under {MESSAGE_MAX_CHARS:,} characters.")
    return text


def _locked(report: MisuseReport) -> MisuseReport:
    return MisuseReport.objects.select_for_update().get(pk=report.pk)


def report_submit(*, category: str, text: str, form_token: str = "") -> Submitted:
    """Open a case: the report as written, encrypted, and a new case key for the reporter."""
    text = _text(text)
    if category not in MisuseReport.Category.values:
        raise ValidationError("Choose what the report is about.")
    sent = submission_digest(form_token) if form_token else None
    if sent is not None:
        earlier = MisuseReport.objects.filter(submission_digest=sent).first()
        if earlier is not None:
            return Submitted(earlier, "")
    key = case_key_new()
    try:
        with transaction.atomic():
            report = MisuseReport.objects.create(
                case_digest=case_key_digest(key), submission_digest=sent, category=category
            )
            ReportMessage.objects.create(
                report=report, author=ReportMessage.Author.REPORTER, body_sealed=seal(text)
            )
            transaction.on_commit(lambda: _enqueue_notice(report.pk, "received"))
    except IntegrityError:
        # The same form, sent twice at once: the other request opened the case.
        return Submitted(MisuseReport.objects.get(submission_digest=sent), "")
    return Submitted(report, key)


def report_find(*, key: str) -> MisuseReport | None:
    """The case a key opens, or None."""
    if not key or not key.strip():
        return None
    return MisuseReport.objects.filter(case_digest=case_key_digest(key)).first()


def report_add(*, report: MisuseReport, text: str) -> ReportMessage:
    """The reporter adds to their report (only they can: it takes the case key to get here)."""
    text = _text(text)
    with transaction.atomic():
        current = _locked(report)
        if current.status == Status.CLOSED:
            raise ReportClosedError("This case is closed; make a new report for anything new.")
        message = ReportMessage.objects.create(
            report=current, author=ReportMessage.Author.REPORTER, body_sealed=seal(text)
        )
        transaction.on_commit(lambda: _enqueue_notice(current.pk, "added"))
    return message


def report_reply(*, report: MisuseReport, officer, text: str) -> ReportMessage:
    """A governance officer's reply, which the reporter reads with the case key. The first one
    acknowledges the report; the first after the acknowledgement is its feedback."""
    text = _text(text)
    today = timezone.localdate()
    with transaction.atomic():
        current = _locked(report)
        if current.status == Status.CLOSED:
            raise ReportClosedError("This case is closed.")
        message = ReportMessage.objects.create(
            report=current,
            author=ReportMessage.Author.OFFICER,
            officer=officer,
            body_sealed=seal(text),
        )
        if current.acknowledged_on is None:
            current.acknowledged_on = today
            current.status = Status.ACKNOWLEDGED
        elif current.feedback_on is None:
            current.feedback_on = today
        current.save(update_fields=["acknowledged_on", "feedback_on", "status"])
    report.refresh_from_db()
    return message


ACKNOWLEDGEMENT = (
    "Your report has been received and will be looked into. You will hear back by {due:%-d %B %Y} "
    "at the latest; read this case again with your case key."
)


def report_acknowledge(*, report: MisuseReport, officer) -> ReportMessage | None:
    """Tell the reporter their report was received, with the date feedback is due; None when
    it had been acknowledged already."""
    with transaction.atomic():
        current = _locked(report)
        if current.acknowledged_on is not None or current.status == Status.CLOSED:
            return None
        today = timezone.localdate()
        current.acknowledged_on = today
        current.status = Status.ACKNOWLEDGED
        current.save(update_fields=["acknowledged_on", "status"])
        message = ReportMessage.objects.create(
            report=current,
            author=ReportMessage.Author.OFFICER,
            officer=officer,
            body_sealed=seal(ACKNOWLEDGEMENT.format(due=current.feedback_due)),
        )
    report.refresh_from_db()
    return message


def report_close(*, report: MisuseReport, officer, outcome: str, note: str = "") -> MisuseReport:
    """Record the outcome and close the case; the reporter sees the outcome, not the note."""
    if outcome not in MisuseReport.Outcome.values:
        raise ValidationError("Choose an outcome.")
    with transaction.atomic():
        current = _locked(report)
        if current.status == Status.CLOSED:
            raise ReportClosedError("This case is closed already.")
        current.outcome = outcome
        current.outcome_note_sealed = seal(note.strip()) if note.strip() else ""
        current.status = Status.CLOSED
        current.closed_on = timezone.localdate()
        current.save(update_fields=["outcome", "outcome_note_sealed", "status", "closed_on"])
    report.refresh_from_db()
    return report


def _enqueue_notice(report_id: int, what: str) -> None:
    from compliance.tasks import report_notice_send

    publish(report_notice_send, report_id, what)


def report_notice(*, report_id: int, what: str) -> int:
    """Tell the governance officers that a report came in or that its reporter added to it:
    the case number and its deadlines, never what was written. Returns the messages sent."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from core import roles
    from core.mail import mail_each, site_url

    report = MisuseReport.objects.filter(pk=report_id).first()
    if report is None:
        return 0
    officers = get_user_model().objects.filter(
        groups__name=roles.GOVERNANCE_OFFICER, is_active=True
    )
    emails = set(officers.exclude(email="").values_list("email", flat=True))
    link = site_url(reverse("admin:compliance_misusereport_change", args=[report.pk]))
    return mail_each(
        "compliance/email/report_notice",
        {"report": report, "what": what, "url": link},
        emails,
    )
