"""Notification preferences: the page, who sees which kinds, and the once-only record."""

import pytest
from django.core import mail

from core import roles
from core.models import NotificationOptOut, SentNotification
from core.notifications import notify, preferences_set, recipients_of
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db

URL = "/accounts/notifications/"


def test_the_page_lists_what_an_applicant_gets_and_saves_their_choice(client, applicant):
    text = client_for(client, applicant).get(URL).content.decode()
    assert "A receipt when an application is submitted" in text
    assert "A new review assignment" not in text  # a reviewer's kind
    assert "Always sent." in text
    response = client.post(URL, {"allocation_active": "on"})
    assert response.status_code == 302 and response["Location"] == URL
    off = set(NotificationOptOut.objects.filter(user=applicant).values_list("kind", flat=True))
    assert off == {"application_submitted", "allocation_expiry"}
    page = client.get(URL).content.decode()
    assert 'name="allocation_active" checked' in page.replace('id="id_allocation_active" ', "")


def test_required_kinds_cannot_be_turned_off(client, applicant):
    client_for(client, applicant).post(URL, {"application_decision": ""})
    assert not NotificationOptOut.objects.filter(kind="application_decision").exists()
    preferences_set(user=applicant, enabled=[])
    assert recipients_of("allocation_blocked", [applicant]) == {applicant.email}
    assert recipients_of("allocation_expiry", [applicant]) == set()


def test_staff_see_their_roles_kinds(client):
    manager = make_user(role=roles.CALL_MANAGER)
    text = client_for(client, manager).get(URL).content.decode()
    assert "A new extension or top-up request" in text


def test_the_page_needs_a_log_in(client):
    assert client.get(URL).status_code == 302


def test_a_notification_goes_out_once(applicant):
    args = {
        "kind": "allocation_active",
        "key": "allocation_event:1",
        "template": "allocations/email/allocation_active",
        "context": {"allocation": None, "url": "http://x/"},
        "users": [applicant],
    }
    assert notify(**args) == 1
    assert notify(**args) == 0
    assert len(mail.outbox) == 1
    assert SentNotification.objects.get().recipients == 1


def test_a_failed_send_is_not_recorded_so_the_retry_sends_it(applicant, monkeypatch):
    from smtplib import SMTPException

    import core.notifications as notifications

    def refuse(*args, **kwargs):
        raise SMTPException("mail server down")

    monkeypatch.setattr(notifications, "mail_each", refuse)
    with pytest.raises(SMTPException):
        notify(
            kind="allocation_active",
            key="allocation_event:2",
            template="allocations/email/allocation_active",
            context={},
            users=[applicant],
        )
    assert not SentNotification.objects.exists()
