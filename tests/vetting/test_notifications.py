"""The receipt of a submitted application."""

import pytest
from django.core import mail

from core.notifications import preferences_set
from tests.factories import make_application
from vetting.notifications import submission_receipt_mail
from vetting.services.intake import application_submit

pytestmark = pytest.mark.django_db


def test_submitting_sends_a_receipt_once_with_a_link_to_follow_it(
    settings, applicant, open_call, django_capture_on_commit_callbacks
):
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    receipts = [m for m in mail.outbox if m.subject.startswith("[hpcgate] Application received")]
    (receipt,) = receipts
    assert receipt.to == [applicant.email]
    assert application.title in receipt.subject
    assert f"{settings.SITE_URL}/applications/{application.pk}/" in receipt.body
    assert "Fast Lane" in receipt.body and "working days" in receipt.body
    assert submission_receipt_mail(application_id=application.pk) == 0


def test_no_receipt_for_whoever_turned_receipts_off(
    applicant, open_call, django_capture_on_commit_callbacks
):
    preferences_set(user=applicant, enabled=[])
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    assert not [m for m in mail.outbox if "Application received" in m.subject]


def test_the_mail_sweep_sends_a_receipt_a_lost_message_left(
    applicant, open_call, broker_down, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from vetting import tasks
    from vetting.models import Application

    broker_down(tasks.submission_receipt_notify)
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    assert not [m for m in mail.outbox if "Application received" in m.subject]
    monkeypatch.undo()
    Application.objects.filter(pk=application.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=20)
    )
    tasks.mail_sweep()
    assert len([m for m in mail.outbox if "Application received" in m.subject]) == 1
    tasks.mail_sweep()
    assert len([m for m in mail.outbox if "Application received" in m.subject]) == 1
