"""Allocation services: creation, grants, every transition (legal and illegal), users, dates and
change requests."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from allocations import services
from allocations.models import Allocation, ChangeRequest
from allocations.services import TransitionError
from allocations.tasks import allocation_dates_apply as allocation_dates_apply_task
from tests.factories import days, make_allocation, make_organisation, partition
from usage.models import UsageRecord

State = Allocation.State

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(reference_data, operator):
    return make_allocation(actor=operator)


def actions(allocation):
    return list(allocation.events.values_list("action", "from_state", "to_state"))


# Creation and grants


@pytest.mark.parametrize("account", ["ec110-guest", "ai.lab_2", "_shared", "2024ai", "SCSG0001"])
def test_account_names_sites_use_are_accepted(reference_data, account):
    assert make_allocation(account=account).account == account


def test_an_account_is_unique_per_cluster_whatever_its_case(reference_data):
    make_allocation(account="SCSG0001")

    with pytest.raises(ValidationError, match="already used on cluster lumi"):
        make_allocation(account="scsg0001")
    assert make_allocation(account="scsg0001", cluster="leonardo").account_key == "scsg0001"


def test_the_database_refuses_an_account_differing_only_in_case(reference_data):
    from django.db import IntegrityError, transaction

    first = make_allocation(account="SCSG0001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            organisation=first.organisation,
            project="x",
            cluster=first.cluster,
            partition=first.partition,
            account="Scsg0001",
            gpu_hours=1,
            start=first.start,
            end=first.end,
        )


def test_allocation_starting_today_is_active_and_records_who_created_it(reference_data, operator):
    allocation = make_allocation(actor=operator)

    assert allocation.state == State.ACTIVE
    assert sorted(allocation.users.values_list("username", flat=True)) == ["alice", "bob"]
    event = allocation.events.get()
    assert (event.action, event.to_state, event.actor) == ("created", "active", operator)


def test_allocation_starting_later_is_scheduled(reference_data):
    allocation = make_allocation(start=days(3), end=days(30))

    assert allocation.state == State.SCHEDULED


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"account": "bad name"}, "not a valid Slurm account name: it contains whitespace"),
        ({"account": "root"}, "reserved"),
        ({"gpu_hours": 0}, "whole number above 0"),
        ({"users": ["alice", "x'; rm -rf /"]}, "not a valid cluster user name"),
        ({"start": days(5), "end": days(1)}, "end on or after its start"),
        ({"start": days(-30), "end": days(-1)}, "before today"),
    ],
)
def test_allocation_create_refuses_invalid_input(reference_data, overrides, message):
    with pytest.raises(ValidationError, match=message):
        make_allocation(**overrides)
    assert not Allocation.objects.exists()


def test_account_is_unique_per_cluster_but_may_repeat_on_another(reference_data):
    make_allocation()
    with pytest.raises(ValidationError, match="already used on cluster lumi"):
        make_allocation()

    assert make_allocation(cluster="leonardo").cluster.name == "leonardo"


def test_creating_an_allocation_attributes_usage_imported_before_it(reference_data):
    lumi = partition("lumi")
    UsageRecord.objects.create(
        cluster=lumi.cluster, job_key="1", account="acme_llm", job_id="1", state="COMPLETED"
    )
    UsageRecord.objects.create(
        cluster=lumi.cluster, job_key="2", account="other", job_id="2", state="COMPLETED"
    )

    allocation = make_allocation()

    matched = UsageRecord.objects.get(job_key="1")
    assert (matched.allocation, matched.partition) == (allocation, lumi)
    assert UsageRecord.objects.get(job_key="2").allocation is None


def test_grant_generates_safe_unique_account_names_per_partition(reference_data, call_manager):
    organisation = make_organisation(legal_name="Ångström Vision GmbH & Co. KG", country="DE")
    make_allocation(account="angstrom_vision_gmbh_co_kg_1")

    granted = services.allocations_grant(
        organisation=organisation,
        project="Vision transformer",
        model_name="angstrom-vit",
        access_mode=None,
        grants=[(partition("lumi"), 1000), (partition("leonardo"), 2000)],
        start=days(0),
        end=days(60),
        users=["alice"],
        actor=call_manager,
    )

    assert [(a.cluster.name, a.account, a.gpu_hours) for a in granted] == [
        ("lumi", "angstrom_vision_gmbh_co_kg_2", 1000),
        ("leonardo", "angstrom_vision_gmbh_co_kg_1", 2000),
    ]
    assert all(a.model_name == "angstrom-vit" and a.state == State.ACTIVE for a in granted)


def test_grant_names_an_organisation_without_letters(reference_data):
    organisation = make_organisation(legal_name="42 !!!")

    [allocation] = services.allocations_grant(
        organisation=organisation, project="p", model_name="", access_mode=None,
        grants=[(partition(), 10)], start=days(0), end=days(1), users=[], actor=None,
    )  # fmt: skip

    assert allocation.account == "org_42_1"


# Transitions


def test_suspend_and_reactivate_record_actor_and_reason(allocation, operator):
    services.allocation_suspend(allocation=allocation, actor=operator, reason="abuse report")
    assert allocation.state == State.SUSPENDED
    services.allocation_reactivate(allocation=allocation, actor=operator, reason="resolved")
    assert allocation.state == State.ACTIVE

    events = list(allocation.events.order_by("id"))[1:]
    assert [(e.action, e.from_state, e.to_state, e.reason, e.actor) for e in events] == [
        ("suspended", "active", "suspended", "abuse report", operator),
        ("reactivated", "suspended", "active", "resolved", operator),
    ]


def test_activate_expire_and_close(reference_data):
    allocation = make_allocation(start=days(2), end=days(10))
    services.allocation_activate(allocation=allocation)
    services.allocation_expire(allocation=allocation)
    services.allocation_close(allocation=allocation, reason="final report received")

    assert allocation.state == State.CLOSED
    assert [a for a, *_ in actions(allocation)] == ["created", "activated", "expired", "closed"]


@pytest.mark.parametrize(
    ("setup", "transition", "message"),
    [
        ([], services.allocation_activate, "only a scheduled allocation can be activated"),
        ([], services.allocation_reactivate, "only a suspended allocation can be reactivated"),
        ([services.allocation_suspend], services.allocation_suspend, "only an active"),
        ([services.allocation_expire], services.allocation_expire, "expired and cannot expire"),
        ([services.allocation_expire], services.allocation_suspend, "only an active"),
        ([services.allocation_expire], services.allocation_reactivate, "only a suspended"),
        ([services.allocation_close], services.allocation_close, "already closed"),
        ([services.allocation_close], services.allocation_expire, "closed and cannot expire"),
        ([services.allocation_close], services.allocation_activate, "only a scheduled"),
    ],
)
def test_illegal_transitions_are_refused_with_a_readable_message(
    allocation, setup, transition, message
):
    for step in setup:
        step(allocation=allocation)
    state_before = allocation.state
    events_before = allocation.events.count()

    with pytest.raises(TransitionError, match=message):
        transition(allocation=allocation)

    allocation.refresh_from_db()
    assert allocation.state == state_before
    assert allocation.events.count() == events_before


def test_transition_reads_the_current_state_not_a_stale_copy(allocation):
    stale = Allocation.objects.get(pk=allocation.pk)
    services.allocation_suspend(allocation=allocation)

    with pytest.raises(TransitionError, match="is suspended"):
        services.allocation_suspend(allocation=stale)


def test_reactivation_after_the_end_date_asks_for_an_extension(allocation):
    services.allocation_suspend(allocation=allocation)

    with pytest.raises(TransitionError, match="extend it before reactivating"):
        services.allocation_reactivate(allocation=allocation, today=allocation.end + timedelta(1))


def test_exhausted_mark_is_set_once_and_cleared_once(allocation):
    services.allocation_mark_exhausted(allocation=allocation, reason="100 % used")
    assert allocation.is_exhausted and allocation.is_blocked
    with pytest.raises(TransitionError, match="already marked exhausted"):
        services.allocation_mark_exhausted(allocation=allocation)

    services.allocation_clear_exhausted(allocation=allocation, reason="usage corrected")
    assert not allocation.is_exhausted
    with pytest.raises(TransitionError, match="not marked exhausted"):
        services.allocation_clear_exhausted(allocation=allocation)
    assert [a for a, *_ in actions(allocation)][-2:] == ["exhausted", "exhausted_cleared"]


def test_closed_allocation_cannot_be_marked_exhausted(allocation):
    services.allocation_close(allocation=allocation)

    with pytest.raises(TransitionError, match="closed"):
        services.allocation_mark_exhausted(allocation=allocation)


# Account names


def test_rename_before_first_export_attributes_usage_of_the_new_name(allocation):
    UsageRecord.objects.create(
        cluster=allocation.cluster, job_key="9", account="acme_new", job_id="9", state="RUNNING"
    )

    services.allocation_rename_account(allocation=allocation, account="acme_new")

    assert allocation.account == "acme_new"
    assert UsageRecord.objects.get(job_key="9").allocation == allocation
    assert allocation.events.filter(action="renamed").exists()


def test_rename_after_first_export_is_refused(allocation):
    Allocation.objects.filter(pk=allocation.pk).update(first_exported_at=timezone.now())

    with pytest.raises(TransitionError, match="can no longer be renamed"):
        services.allocation_rename_account(allocation=allocation, account="acme_new")


def test_rename_to_a_taken_or_unsafe_name_is_refused(allocation):
    make_allocation(account="taken")
    with pytest.raises(ValidationError, match="already used"):
        services.allocation_rename_account(allocation=allocation, account="taken")
    with pytest.raises(ValidationError, match="not a valid Slurm account"):
        services.allocation_rename_account(allocation=allocation, account="acme:x")


# Cluster users


def test_users_set_adds_and_removes_with_one_event_each(allocation, applicant):
    added, removed = services.allocation_users_set(
        allocation=allocation, usernames=["bob", "carol"], actor=applicant
    )

    assert (added, removed) == (["carol"], ["alice"])
    assert sorted(allocation.users.values_list("username", flat=True)) == ["bob", "carol"]
    assert sorted(allocation.events.values_list("action", "reason"))[-2:] == [
        ("user_added", "carol"),
        ("user_removed", "alice"),
    ]


def test_user_add_and_remove_validate_names_and_membership(allocation):
    services.allocation_user_add(allocation=allocation, username="_svc.bot-1")
    with pytest.raises(ValidationError, match="already a user"):
        services.allocation_user_add(allocation=allocation, username="alice")
    with pytest.raises(ValidationError, match="not a valid cluster user name"):
        services.allocation_user_add(allocation=allocation, username="Alice")
    services.allocation_user_remove(allocation=allocation, username="alice")
    with pytest.raises(ValidationError, match="not a user"):
        services.allocation_user_remove(allocation=allocation, username="alice")


def test_users_of_a_closed_allocation_cannot_change(allocation):
    services.allocation_close(allocation=allocation)

    with pytest.raises(TransitionError, match="closed"):
        services.allocation_user_add(allocation=allocation, username="carol")


# Dates


def test_daily_task_activates_on_the_start_date_and_expires_after_the_end(reference_data):
    starting = make_allocation(account="starting", start=days(1), end=days(30))
    ending = make_allocation(account="ending", start=days(-10), end=days(0))
    suspended = make_allocation(account="paused", start=days(-10), end=days(0))
    services.allocation_suspend(allocation=suspended)

    assert services.allocation_dates_apply(today=days(0)) == {"activated": 0, "expired": 0}
    assert services.allocation_dates_apply(today=days(1)) == {"activated": 1, "expired": 2}

    states = dict(Allocation.objects.values_list("account", "state"))
    assert states == {"starting": "active", "ending": "expired", "paused": "expired"}
    event = ending.events.get(action="expired")
    assert event.actor is None and "end date passed" in event.reason
    assert starting.events.filter(action="activated").exists()


def test_daily_task_runs_the_service_and_reports_counts(reference_data):
    make_allocation(start=days(-10), end=days(-1) + timedelta(1))
    Allocation.objects.update(end=days(-1))

    assert allocation_dates_apply_task() == "activated=0 expired=1"


def test_daily_task_skips_while_another_run_holds_the_lock(reference_data):
    from core.locks import task_lock

    with task_lock("allocation_dates_apply", timeout=60):
        assert allocation_dates_apply_task().startswith("skipped")


# Change requests


def test_extension_request_approved_moves_the_end(allocation, applicant, call_manager):
    new_end = allocation.end + timedelta(days=30)
    change = services.change_request_submit(
        allocation=allocation, kind="extension", justification="Training diverged; rerun.",
        requested_by=applicant, new_end=new_end,
    )  # fmt: skip

    services.change_request_approve(change_request=change, actor=call_manager, reason="fine")

    allocation.refresh_from_db()
    assert allocation.end == new_end
    assert (change.state, change.decided_by) == (ChangeRequest.State.APPROVED, call_manager)
    assert allocation.events.filter(action="extension_approved", actor=call_manager).exists()


def test_top_up_approved_adds_hours_and_lifts_the_exhausted_mark(allocation, applicant):
    services.allocation_mark_exhausted(allocation=allocation)
    change = services.change_request_submit(
        allocation=allocation, kind="top_up", justification="More epochs",
        requested_by=applicant, extra_gpu_hours=5000,
    )  # fmt: skip

    services.change_request_approve(change_request=change, actor=None)

    allocation.refresh_from_db()
    assert allocation.gpu_hours == 55_000
    assert not allocation.is_exhausted


def test_denial_needs_a_reason_and_keeps_the_allocation(allocation, applicant, call_manager):
    change = services.change_request_submit(
        allocation=allocation, kind="top_up", justification="More",
        requested_by=applicant, extra_gpu_hours=10,
    )  # fmt: skip
    with pytest.raises(ValidationError, match="reason"):
        services.change_request_deny(change_request=change, actor=call_manager, reason=" ")

    services.change_request_deny(change_request=change, actor=call_manager, reason="No budget")

    allocation.refresh_from_db()
    assert allocation.gpu_hours == 50_000
    assert change.state == ChangeRequest.State.DENIED
    with pytest.raises(TransitionError, match="already denied"):
        services.change_request_approve(change_request=change, actor=call_manager)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "extension", "new_end": None}, ValidationError, "new end date after"),
        ({"kind": "top_up", "extra_gpu_hours": 0}, ValidationError, "above 0"),
        ({"kind": "top_up", "extra_gpu_hours": 5, "justification": ""}, ValidationError, "why"),
        ({"kind": "refund"}, ValidationError, "Unknown change request kind"),
    ],
)
def test_invalid_change_requests_are_refused(allocation, applicant, kwargs, error, message):
    arguments = {"justification": "Because", "requested_by": applicant, **kwargs}
    with pytest.raises(error, match=message):
        services.change_request_submit(allocation=allocation, **arguments)
    assert not ChangeRequest.objects.exists()


def test_only_one_pending_request_per_kind(allocation, applicant):
    services.change_request_submit(
        allocation=allocation, kind="top_up", justification="a", requested_by=applicant,
        extra_gpu_hours=1,
    )  # fmt: skip
    with pytest.raises(TransitionError, match="already waiting"):
        services.change_request_submit(
            allocation=allocation, kind="top_up", justification="b", requested_by=applicant,
            extra_gpu_hours=2,
        )  # fmt: skip


def test_expired_allocation_takes_no_requests_and_pending_ones_can_only_be_denied(
    allocation, applicant, call_manager
):
    change = services.change_request_submit(
        allocation=allocation, kind="top_up", justification="a", requested_by=applicant,
        extra_gpu_hours=1,
    )  # fmt: skip
    services.allocation_expire(allocation=allocation)

    with pytest.raises(TransitionError, match="can only be denied"):
        services.change_request_approve(change_request=change, actor=call_manager)
    with pytest.raises(TransitionError, match="apply for a new allocation"):
        services.change_request_submit(
            allocation=allocation, kind="top_up", justification="b", requested_by=applicant,
            extra_gpu_hours=2,
        )  # fmt: skip


# Demo data


def test_demo_seed_is_idempotent_and_reuses_organisations_found_by_name(reference_data):
    from demo.allocations import demo_allocations_seed
    from demo.reference import demo_users_seed
    from organisations.models import Organisation

    demo_users_seed()
    # The intake seed may have created the organisation first, under another registration id.
    Organisation.objects.create(legal_name="Aurora AI Oy", country="FI", registration_id="FI1")

    first = demo_allocations_seed()
    records = UsageRecord.objects.count()
    second = demo_allocations_seed()

    assert first[0] == "Demo allocations: 3 (3 new) for Aurora AI Oy and Lince Labs SL."
    assert first[1].startswith("Demo usage: lumi:aurora_ai_1 imported=56 ")
    assert "allocation_75" in first[2]
    assert second == ["Demo allocations: 3 (0 new) for Aurora AI Oy and Lince Labs SL."]
    assert UsageRecord.objects.count() == records > 0
    assert Organisation.objects.filter(legal_name="Aurora AI Oy").count() == 1
    aurora = Allocation.objects.filter(organisation__legal_name="Aurora AI Oy")
    assert sorted(aurora.values_list("cluster__name", "state")) == [
        ("leonardo", "active"),
        ("lumi", "active"),
    ]
    assert aurora.get(cluster__name="leonardo").model_name == "aurora-nordic-7b"
    owner = aurora.first().organisation.membership_set.get()
    assert (owner.user.username, owner.role) == ("applicant", "owner")
