"""The e-mails about allocations: each once, each with an absolute link, each to the right people,
and the optional ones only to those who want them."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from allocations import services
from allocations.notifications import expiry_reminders_send
from allocations.tasks import allocation_expiry_reminders
from core import roles
from core.notifications import preferences_set
from tests.factories import days, make_allocation, make_organisation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(applicant):
    return make_allocation(organisation=make_organisation(owner=applicant))


def _to(address: str) -> list:
    return [message for message in mail.outbox if message.to == [address]]


def test_a_change_request_reaches_the_call_managers_once_with_a_link_to_decide(
    settings, applicant, call_manager, allocation, django_capture_on_commit_callbacks
):
    other_manager = make_user(role=roles.CALL_MANAGER)
    with django_capture_on_commit_callbacks(execute=True):
        change = services.change_request_submit(
            allocation=allocation,
            kind="top_up",
            justification="The 7B run needs another week.",
            requested_by=applicant,
            extra_gpu_hours=10_000,
        )
    assert sorted(m.to[0] for m in mail.outbox) == sorted([call_manager.email, other_manager.email])
    message = _to(call_manager.email)[0]
    assert "Top-up requested for lumi:acme_llm" in message.subject
    assert "10,000 more GPU-hours" in message.body
    assert f"{settings.SITE_URL}/admin/allocations/changerequest/{change.pk}/change/" in (
        message.body
    )
    # the task running again (a retried message) sends nothing more
    from allocations.notifications import change_request_received_mail

    assert change_request_received_mail(change_request_id=change.pk) == 0
    assert len(mail.outbox) == 2


def test_the_decision_on_a_change_request_reaches_the_applicant(
    settings, applicant, call_manager, allocation, django_capture_on_commit_callbacks
):
    change = services.change_request_submit(
        allocation=allocation,
        kind="extension",
        justification="Data arrived late.",
        requested_by=applicant,
        new_end=allocation.end + timedelta(days=30),
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_deny(
            change_request=change, actor=call_manager, reason="The call ends in March."
        )
    (message,) = _to(applicant.email)
    assert "extension request was denied" in message.subject
    assert "The call ends in March." in message.body
    assert f"{settings.SITE_URL}/allocations/{allocation.pk}/" in message.body
    assert call_manager.username not in message.body


def test_an_approved_top_up_tells_the_new_grant(
    applicant, call_manager, allocation, django_capture_on_commit_callbacks
):
    change = services.change_request_submit(
        allocation=allocation,
        kind="top_up",
        justification="More.",
        requested_by=applicant,
        extra_gpu_hours=5_000,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_approve(change_request=change, actor=call_manager)
    (message,) = _to(applicant.email)
    assert "approved" in message.subject
    assert "now has 55,000 GPU-hours" in message.body


@pytest.mark.parametrize(
    ("days_left", "subject"),
    [(30, "ends in 30 days"), (20, "ends in 20 days"), (7, "ends in 7 days"), (0, "ends today")],
)
def test_owners_are_reminded_before_the_end_date(settings, applicant, days_left, subject):
    member = make_user()
    organisation = make_organisation(owner=applicant, member=member)
    allocation = make_allocation(organisation=organisation, end=days(days_left))
    assert expiry_reminders_send() == 1
    (message,) = mail.outbox
    assert message.to == [applicant.email]  # owners, not every member
    assert subject in message.subject
    assert f"{settings.SITE_URL}/allocations/{allocation.pk}/" in message.body
    assert expiry_reminders_send() == 0  # once


def test_each_reminder_goes_out_once_and_an_extension_re_arms_them(applicant, call_manager):
    allocation = make_allocation(organisation=make_organisation(owner=applicant), end=days(30))
    today = timezone.localdate()
    assert expiry_reminders_send(today=today) == 1  # 30 days
    assert expiry_reminders_send(today=today + timedelta(days=10)) == 0  # 20 left: same one
    assert expiry_reminders_send(today=today + timedelta(days=23)) == 1  # 7 left
    assert expiry_reminders_send(today=today + timedelta(days=30)) == 1  # last day
    assert expiry_reminders_send(today=today + timedelta(days=30)) == 0
    change = services.change_request_submit(
        allocation=allocation,
        kind="extension",
        justification="More time.",
        requested_by=applicant,
        new_end=days(60),
    )
    services.change_request_approve(change_request=change, actor=call_manager)
    mail.outbox.clear()
    assert expiry_reminders_send(today=today + timedelta(days=30)) == 1  # new end, 30 days left
    assert "ends in 30 days" in mail.outbox[0].subject


def test_allocations_far_from_their_end_or_over_get_no_reminder(applicant):
    organisation = make_organisation(owner=applicant)
    make_allocation(organisation=organisation, account="far", end=days(31))
    closed = make_allocation(organisation=organisation, account="done", end=days(3))
    services.allocation_close(allocation=closed, reason="final report in")
    assert expiry_reminders_send() == 0


def test_the_daily_task_sends_the_reminders(applicant):
    make_allocation(organisation=make_organisation(owner=applicant), end=days(7))
    assert allocation_expiry_reminders() == "sent=1"


def test_owners_who_turned_reminders_off_get_none(applicant):
    preferences_set(user=applicant, enabled=[])
    make_allocation(organisation=make_organisation(owner=applicant), end=days(7))
    assert expiry_reminders_send() == 0
    assert mail.outbox == []


def test_an_allocation_becoming_active_tells_the_owners(
    settings, applicant, django_capture_on_commit_callbacks
):
    allocation = make_allocation(
        organisation=make_organisation(owner=applicant), start=days(2), end=days(60)
    )
    assert allocation.state == "scheduled" and mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        services.allocation_dates_apply(today=days(2))
    (message,) = mail.outbox
    assert message.to == [applicant.email]
    assert "Your allocation is active: acme_llm on LUMI" in message.subject
    assert "sbatch -A acme_llm -p standard-g" in message.body
    assert f"{settings.SITE_URL}/allocations/{allocation.pk}/" in message.body


@pytest.mark.parametrize("how", ["suspended", "exhausted"])
def test_a_blocked_allocation_tells_the_owners_even_if_they_turned_the_others_off(
    applicant, operator, how, django_capture_on_commit_callbacks
):
    preferences_set(user=applicant, enabled=[])
    allocation = make_allocation(organisation=make_organisation(owner=applicant))
    with django_capture_on_commit_callbacks(execute=True):
        if how == "suspended":
            services.allocation_suspend(allocation=allocation, actor=operator, reason="security")
        else:
            services.allocation_mark_exhausted(allocation=allocation)
    (message,) = mail.outbox
    assert "Your allocation is blocked" in message.subject
    assert ("top-up" in message.body) == (how == "exhausted")


def test_the_sweep_sends_what_a_lost_message_left_and_only_that(
    applicant,
    call_manager,
    allocation,
    broker_down,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    from allocations import tasks
    from allocations.models import AllocationEvent, ChangeRequest

    broker_down(tasks.change_request_received_notify, tasks.allocation_event_notify)
    with django_capture_on_commit_callbacks(execute=True):
        change = services.change_request_submit(
            allocation=allocation,
            kind="top_up",
            justification="More.",
            requested_by=applicant,
            extra_gpu_hours=1_000,
        )
        services.allocation_suspend(allocation=allocation, reason="maintenance")
    assert mail.outbox == []
    monkeypatch.undo()
    assert tasks.allocation_mail_sweep() == "queued=0"  # too young: its own task may be on the way
    past = timezone.now() - timedelta(minutes=20)
    ChangeRequest.objects.filter(pk=change.pk).update(requested_at=past)
    AllocationEvent.objects.filter(allocation=allocation).update(at=past)
    assert tasks.allocation_mail_sweep() == "queued=2"
    assert sorted(m.subject.split("] ")[1][:24] for m in mail.outbox) == [
        "Top-up requested for lum",
        "Your allocation is block",
    ]
    assert tasks.allocation_mail_sweep() == "queued=0"


def test_allocations_used_up_in_one_check_are_told_in_few_broker_messages_one_mail_each(
    applicant, monkeypatch, django_capture_on_commit_callbacks
):
    from allocations import tasks

    organisation = make_organisation(owner=applicant)
    allocations = [
        make_allocation(organisation=organisation, account=f"acme_{n}") for n in range(5)
    ]
    published = []
    real_publish = tasks.publish

    def counting_publish(task, *args):
        published.append(task.name)
        return real_publish(task, *args)

    monkeypatch.setattr(tasks, "publish", counting_publish)
    monkeypatch.setattr(services, "EVENTS_PER_MESSAGE", 2)
    with django_capture_on_commit_callbacks(execute=True):
        marked = services.allocations_mark_exhausted(
            reasons={a.pk: "Used 101 % of the grant." for a in allocations}
        )

    assert sorted(marked) == sorted(a.pk for a in allocations)
    assert published == ["allocations.tasks.allocation_events_notify"] * 3
    blocked = [m for m in mail.outbox if "blocked" in m.subject]
    assert len(blocked) == 5
    assert {m.to[0] for m in blocked} == {applicant.email}
