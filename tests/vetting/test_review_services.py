"""The vetting workflow after submission: every transition, every refusal, the audit trail."""

import threading

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from allocations.models import Allocation
from core import roles
from organisations.models import Country, Membership
from systems.models import AccessModePartition, Partition
from tests.factories import (
    GOOD_SCORES,
    make_application,
    make_assignment,
    make_organisation,
    make_review,
    make_user,
)
from vetting import tasks
from vetting.models import Application, Decision, ReviewAssignment, ReviewerProfile
from vetting.services import review as workflow
from vetting.services.intake import application_submit, application_withdraw
from vetting.services.transitions import TransitionError

State = Application.State


@pytest.fixture
def leonardo(open_call):
    return Partition.objects.get(cluster__name="leonardo")


@pytest.fixture
def panel(reviewer, other_reviewer):
    return [reviewer, other_reviewer]


# Screening


def test_submission_queues_screening_on_commit(
    applicant, open_call, django_capture_on_commit_callbacks
):
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    application.refresh_from_db()
    assert application.state == State.IN_REVIEW


def test_submission_is_kept_when_the_broker_is_down_and_the_sweep_requeues_it(
    applicant, open_call, django_capture_on_commit_callbacks, monkeypatch, broker_down
):
    broker_down(tasks.application_screen)
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    application.refresh_from_db()
    assert application.state == State.SUBMITTED
    monkeypatch.undo()
    Application.objects.filter(pk=application.pk).update(
        submitted_at=application.submitted_at - tasks.SWEEP_SUBMITTED_AFTER * 2
    )
    assert tasks.screening_sweep() == "queued=1 stuck=1"
    application.refresh_from_db()
    assert application.state == State.IN_REVIEW


def test_screening_task_retries_on_a_database_outage():
    from django.db import OperationalError

    retried_on = tasks.application_screen.autoretry_for
    assert any(issubclass(OperationalError, kind) for kind in retried_on)
    assert tasks.application_screen.retry_backoff


def test_screening_cannot_start_twice(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    workflow.screening_start(application=application)
    with pytest.raises(TransitionError, match="eligibility screening, so it cannot be screened"):
        workflow.screening_start(application=application)


def test_screening_cannot_finish_before_it_started(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    with pytest.raises(TransitionError, match="submitted, so it cannot be sent to review"):
        workflow.screening_finish(application=application, flags=[])


def test_call_manager_overrides_ineligibility_with_a_reason(applicant, open_call, call_manager):
    Country.objects.update_or_create(
        code="US", defaults={"name": "United States", "status": "other"}
    )
    organisation = make_organisation(owner=applicant, country="US")
    application = make_application(
        applicant=applicant, call=open_call, state="submitted", organisation=organisation
    )
    workflow.application_screen(application_id=application.pk)
    application.refresh_from_db()
    assert application.state == State.INELIGIBLE
    with pytest.raises(ValidationError):
        workflow.ineligibility_override(application=application, actor=call_manager, reason=" ")
    workflow.ineligibility_override(
        application=application, actor=call_manager, reason="EU subsidiary confirmed"
    )
    assert application.state == State.IN_REVIEW
    event = application.events.last()
    assert (event.actor, event.reason) == (
        call_manager,
        "Screening overridden: EU subsidiary confirmed",
    )


def test_only_an_ineligible_application_can_be_overridden(applicant, open_call, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    with pytest.raises(TransitionError, match="in review, so it cannot be sent to review"):
        workflow.ineligibility_override(application=application, actor=call_manager, reason="x")


# Assignment and conflicts of interest


def test_auto_assign_fills_the_panel_least_loaded_first_and_mails_reviewers(
    applicant, other_applicant, open_call, call_manager, django_capture_on_commit_callbacks
):
    first, second, third = (
        make_user(username=n, role=roles.REVIEWER) for n in ("ana", "ben", "cy")
    )
    busy = make_application(applicant=other_applicant, call=open_call, state="in_review")
    workflow.reviewer_assign(application=busy, reviewer=first, actor=call_manager)
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    with django_capture_on_commit_callbacks(execute=True):
        made = workflow.reviewers_auto_assign(application=application, actor=call_manager)
    assert sorted(a.reviewer.username for a in made) == ["ben", "cy"]
    assert sorted(m.to[0] for m in mail.outbox) == ["ben@ben.example", "cy@cy.example"]
    assert application.title in mail.outbox[0].subject
    assert workflow.reviewers_auto_assign(application=application, actor=call_manager) == []


def test_assignment_mail_lost_with_the_broker_is_sent_by_the_sweep_once(
    applicant, open_call, call_manager, django_capture_on_commit_callbacks, monkeypatch, broker_down
):
    from vetting.models import ReviewAssignment

    reviewer = make_user(username="dee", role=roles.REVIEWER)
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    broker_down(tasks.assignment_notify)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)
    assert mail.outbox == []
    monkeypatch.undo()
    assert tasks.mail_sweep() == "queued=0"  # too young: its own message may be on the way
    ReviewAssignment.objects.update(assigned_at=timezone.now() - tasks.SWEEP_MAIL_AFTER * 2)
    assert tasks.mail_sweep() == "queued=1"
    assert [m.to for m in mail.outbox] == [[reviewer.email]]
    assert tasks.mail_sweep() == "queued=0"
    assert tasks.assignment_notify(ReviewAssignment.objects.get().pk) == 0  # a late duplicate
    assert len(mail.outbox) == 1


def test_auto_assign_skips_members_same_domain_affiliations_and_declared_conflicts(
    applicant, open_call, call_manager
):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    member, same_domain, affiliated, fine = (
        make_user(username=n, role=roles.REVIEWER)
        for n in ("member", "domain", "affiliated", "fine")
    )
    Membership.objects.create(organisation=application.organisation, user=member)
    same_domain.email = "someone@founder.example"  # the applicant's domain
    same_domain.save()
    ReviewerProfile.objects.create(
        user=affiliated, affiliations=application.organisation.registration_id
    )
    with pytest.raises(TransitionError, match="1 more could not be found"):
        workflow.reviewers_auto_assign(application=application, actor=call_manager)
    assert [a.reviewer for a in application.assignments.all()] == [fine]
    for person, why in ((member, "member"), (same_domain, "e-mail domain"), (affiliated, "affil")):
        with pytest.raises(TransitionError, match=why):
            workflow.reviewer_assign(application=application, reviewer=person, actor=call_manager)


def test_reviewer_at_maximum_load_is_refused(applicant, other_applicant, open_call, call_manager):
    person = make_user(username="solo", role=roles.REVIEWER)
    ReviewerProfile.objects.create(user=person, max_load_per_call=1)
    workflow.reviewer_assign(
        application=make_application(applicant=applicant, call=open_call, state="in_review"),
        reviewer=person,
        actor=call_manager,
    )
    with pytest.raises(TransitionError, match="maximum"):
        workflow.reviewer_assign(
            application=make_application(
                applicant=other_applicant, call=open_call, state="in_review"
            ),
            reviewer=person,
            actor=call_manager,
        )


def test_only_reviewers_can_be_assigned(applicant, open_call, call_manager, outsider):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    with pytest.raises(TransitionError, match="not a reviewer"):
        workflow.reviewer_assign(application=application, reviewer=outsider, actor=call_manager)


def test_assignment_needs_an_application_in_review(applicant, open_call, reviewer, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    with pytest.raises(TransitionError, match="submitted, so it cannot be assigned"):
        workflow.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)


def test_declared_conflict_releases_the_assignment_and_blocks_the_organisation(
    applicant, open_call, reviewer, call_manager
):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    assignment = workflow.reviewer_assign(
        application=application, reviewer=reviewer, actor=call_manager
    )
    with pytest.raises(ValidationError):
        workflow.conflict_declare(assignment=assignment, reviewer=reviewer, explanation="")
    workflow.conflict_declare(
        assignment=assignment, reviewer=reviewer, explanation="I advised them last year"
    )
    assert assignment.state == ReviewAssignment.State.RELEASED
    with pytest.raises(TransitionError, match="released"):
        workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)
    second = make_application(
        applicant=applicant, call=open_call, organisation=application.organisation
    )
    application_submit(application=second, actor=applicant)
    workflow.application_screen(application_id=second.pk)
    with pytest.raises(TransitionError, match="declared a conflict"):
        workflow.reviewer_assign(application=second, reviewer=reviewer, actor=call_manager)
    assert application.events.last().public_note == (
        "A reviewer stepped aside; another reviewer will be assigned."
    )


def test_only_the_assigned_reviewer_answers_the_conflict_question(
    applicant, open_call, reviewer, other_reviewer, call_manager
):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    assignment = workflow.reviewer_assign(
        application=application, reviewer=reviewer, actor=call_manager
    )
    with pytest.raises(PermissionError):
        workflow.conflict_confirm_none(assignment=assignment, reviewer=other_reviewer)


# Reviews


def test_review_needs_the_conflict_statement_first(applicant, open_call, reviewer, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    assignment = workflow.reviewer_assign(
        application=application, reviewer=reviewer, actor=call_manager
    )
    with pytest.raises(TransitionError, match="conflict-of-interest"):
        workflow.review_submit(
            assignment=assignment, reviewer=reviewer, scores=GOOD_SCORES, recommendation="approve"
        )


def test_a_submitted_review_is_locked(applicant, open_call, reviewer, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    assignment = make_assignment(application=application, reviewer=reviewer, manager=call_manager)
    workflow.review_submit(
        assignment=assignment, reviewer=reviewer, scores=GOOD_SCORES, recommendation="approve"
    )
    with pytest.raises(TransitionError, match="review submitted"):
        workflow.review_save(
            assignment=assignment, reviewer=reviewer, scores={**GOOD_SCORES, "ethics": 0}
        )


def test_review_scores_are_checked(applicant, open_call, reviewer, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    assignment = make_assignment(application=application, reviewer=reviewer, manager=call_manager)
    with pytest.raises(ValidationError, match="scored from 0 to 5"):
        workflow.review_save(assignment=assignment, reviewer=reviewer, scores={"ethics": 6})
    with pytest.raises(ValidationError, match="Score"):
        workflow.review_submit(
            assignment=assignment, reviewer=reviewer, scores={"ethics": 3}, recommendation="reject"
        )
    with pytest.raises(ValidationError, match="recommendation"):
        workflow.review_submit(
            assignment=assignment, reviewer=reviewer, scores=GOOD_SCORES, recommendation=""
        )
    draft = workflow.review_save(assignment=assignment, reviewer=reviewer, scores={"ethics": 3})
    assert draft.submitted_at is None and draft.scores.get().score == 3


def test_application_is_reviewed_when_all_reviews_are_in(applicant, open_call, panel, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    make_review(application=application, reviewer=panel[0], manager=call_manager)
    application.refresh_from_db()
    assert application.state == State.IN_REVIEW
    with pytest.raises(TransitionError, match="needs 2 submitted reviews"):
        workflow.application_mark_reviewed(application=application, actor=call_manager)
    make_review(application=application, reviewer=panel[1], manager=call_manager)
    application.refresh_from_db()
    assert application.state == State.REVIEWED
    assert application.assignments.get(reviewer=panel[0]).review.weighted_score == 4.0


# Decisions


def test_approval_grants_up_to_the_request_and_creates_allocations(
    applicant, open_call, panel, call_manager, leonardo, django_capture_on_commit_callbacks
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    with pytest.raises(ValidationError, match="Grant between 1 and the 20,000"):
        workflow.application_approve(
            application=application, actor=call_manager, reason="ok", grants={leonardo.pk: 20_001}
        )
    with pytest.raises(ValidationError, match="asks for no time"):
        workflow.application_approve(
            application=application,
            actor=call_manager,
            reason="ok",
            grants={Partition.objects.get(cluster__name="lumi").pk: 1},
        )
    with pytest.raises(ValidationError, match="reason"):
        workflow.application_approve(
            application=application, actor=call_manager, reason="", grants={leonardo.pk: 1}
        )
    with django_capture_on_commit_callbacks(execute=True):
        decision = workflow.application_approve(
            application=application,
            actor=call_manager,
            reason="Strong team.",
            grants={leonardo.pk: 15_000},
        )
    application.refresh_from_db()
    assert application.state == State.APPROVED
    allocation = decision.allocations.get()
    assert (allocation.partition, allocation.gpu_hours) == (leonardo, 15_000)
    assert allocation.organisation == application.organisation
    assert allocation.model_name == application.model_name
    assert decision.grants.get().gpu_hours == 15_000
    assert [m.to for m in mail.outbox] == [["aino@aurora-ai.example"], ["founder@founder.example"]]
    assert f"{settings.SITE_URL}/applications/{application.pk}/" in mail.outbox[0].body
    assert "approved" in mail.outbox[0].subject
    assert "15,000" in mail.outbox[0].body and "Strong team." in mail.outbox[0].body
    assert "expert" not in mail.outbox[0].body


def test_decision_mail_lost_with_the_broker_is_sent_by_the_sweep(
    applicant,
    open_call,
    panel,
    call_manager,
    django_capture_on_commit_callbacks,
    monkeypatch,
    broker_down,
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    broker_down(tasks.decision_notify)
    with django_capture_on_commit_callbacks(execute=True):
        decision = workflow.application_reject(
            application=application, actor=call_manager, reason="Out of scope."
        )
    assert mail.outbox == []
    monkeypatch.undo()
    Decision.objects.update(decided_at=timezone.now() - tasks.SWEEP_MAIL_AFTER * 2)
    assert tasks.mail_sweep() == "queued=1"
    assert "Out of scope." in mail.outbox[0].body
    decision.refresh_from_db()
    assert decision.notified_at is not None
    assert tasks.mail_sweep() == "queued=0"


def test_approval_cannot_exceed_remaining_capacity(
    applicant, other_applicant, open_call, panel, call_manager, leonardo
):
    AccessModePartition.objects.filter(
        access_mode=open_call.access_modes.get(kind="fast_lane"), partition=leonardo
    ).update(capacity_gpu_hours=30_000)
    first = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    second = make_application(
        applicant=other_applicant,
        call=open_call,
        state="reviewed",
        reviewers=panel,
        manager=call_manager,
    )
    workflow.application_approve(
        application=first, actor=call_manager, reason="ok", grants={leonardo.pk: 20_000}
    )
    with pytest.raises(ValidationError, match="10,000 GPU-hours left"):
        workflow.application_approve(
            application=second, actor=call_manager, reason="ok", grants={leonardo.pk: 20_000}
        )
    second.refresh_from_db()
    assert second.state == State.REVIEWED


@pytest.mark.parametrize(
    ("decide", "outcome", "template_word"),
    [
        (workflow.application_reject, State.REJECTED, "Decision on"),
        (workflow.application_waitlist, State.WAITLISTED, "waiting list"),
    ],
)
def test_reject_and_waitlist_need_a_reason_and_mail_the_applicant(
    applicant,
    open_call,
    panel,
    call_manager,
    decide,
    outcome,
    template_word,
    django_capture_on_commit_callbacks,
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    with pytest.raises(ValidationError):
        decide(application=application, actor=call_manager, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        decision = decide(application=application, actor=call_manager, reason="Capacity.")
    application.refresh_from_db()
    assert (application.state, decision.outcome) == (outcome, outcome)
    assert template_word in mail.outbox[0].subject


def test_waitlisted_application_is_approved_when_capacity_frees(
    applicant, open_call, panel, call_manager, leonardo
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    workflow.application_waitlist(application=application, actor=call_manager, reason="Full")
    with pytest.raises(TransitionError, match="waitlisted, so it cannot be waitlisted"):
        workflow.application_waitlist(application=application, actor=call_manager, reason="x")
    workflow.application_approve(
        application=application, actor=call_manager, reason="Freed", grants={leonardo.pk: 1_000}
    )
    assert list(application.decisions.values_list("outcome", flat=True)) == [
        "approved",
        "waitlisted",
    ]


@pytest.mark.parametrize("state", [State.SUBMITTED, State.IN_REVIEW, State.REJECTED])
def test_decisions_refused_outside_reviewed_or_waitlisted(
    applicant, open_call, call_manager, leonardo, state
):
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    Application.objects.filter(pk=application.pk).update(state=state)
    label = dict(State.choices)[state].lower()
    with pytest.raises(TransitionError, match=f"{label}, so it cannot be approved"):
        workflow.application_approve(
            application=application, actor=call_manager, reason="x", grants={leonardo.pk: 1}
        )
    with pytest.raises(TransitionError, match=f"{label}, so it cannot be rejected"):
        workflow.application_reject(application=application, actor=call_manager, reason="x")


def test_decided_application_cannot_be_withdrawn(applicant, open_call, panel, call_manager):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    workflow.application_reject(application=application, actor=call_manager, reason="No")
    with pytest.raises(TransitionError, match="rejected, so it cannot be withdrawn"):
        application_withdraw(application=application, actor=applicant)


def test_two_call_managers_deciding_at_once_yield_one_decision(
    applicant, open_call, panel, call_manager, leonardo
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    other_manager = Application.objects.get(pk=application.pk)  # a second, stale copy
    workflow.application_approve(
        application=application, actor=call_manager, reason="Yes", grants={leonardo.pk: 5_000}
    )
    with pytest.raises(TransitionError, match="approved, so it cannot be rejected"):
        workflow.application_reject(application=other_manager, actor=call_manager, reason="No")
    with pytest.raises(TransitionError, match="approved, so it cannot be approved"):
        workflow.application_approve(
            application=other_manager, actor=call_manager, reason="Yes", grants={leonardo.pk: 5}
        )
    assert Decision.objects.filter(application=application).count() == 1
    assert Allocation.objects.filter(organisation=application.organisation).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_call_managers_in_parallel_yield_one_decision(
    applicant, open_call, panel, call_manager, leonardo
):
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", reviewers=panel, manager=call_manager
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(fn, **extra):
        from django.db import connections

        barrier.wait()
        try:
            fn(application=Application.objects.get(pk=application.pk), actor=call_manager, **extra)
            outcomes.append("ok")
        except TransitionError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(
            target=decide,
            args=(workflow.application_approve,),
            kwargs={"reason": "Yes", "grants": {leonardo.pk: 5_000}},
        ),
        threading.Thread(
            target=decide, args=(workflow.application_reject,), kwargs={"reason": "No"}
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert Decision.objects.filter(application=application).count() == 1


# Done when: one application from submission to decision, every step in the trail


def test_one_application_from_submission_through_two_reviews_to_a_decision(
    applicant, open_call, panel, call_manager, leonardo, django_capture_on_commit_callbacks
):
    application = make_application(applicant=applicant, call=open_call)
    with django_capture_on_commit_callbacks(execute=True):
        application_submit(application=application, actor=applicant)
    workflow.reviewers_auto_assign(application=application, actor=call_manager)
    for assignment in application.assignments.all():
        workflow.conflict_confirm_none(assignment=assignment, reviewer=assignment.reviewer)
        workflow.review_submit(
            assignment=assignment,
            reviewer=assignment.reviewer,
            scores=GOOD_SCORES,
            recommendation="approve",
        )
    workflow.application_approve(
        application=application, actor=call_manager, reason="Funded.", grants={leonardo.pk: 20_000}
    )
    trail = list(application.events.values_list("from_state", "to_state", "actor__username"))
    assert [(f, t) for f, t, _ in trail if f != t] == [
        ("", "draft"),
        ("draft", "submitted"),
        ("submitted", "screening"),
        ("screening", "in_review"),
        ("in_review", "reviewed"),
        ("reviewed", "approved"),
    ]
    same_state = [actor for f, t, actor in trail if f == t]
    assert same_state.count("chair") == 2  # two assignments by the call manager
    assert same_state.count("expert") == 2 and same_state.count("expert2") == 2
    assert trail[-1] == ("reviewed", "approved", "chair")
    notes = " ".join(application.events.values_list("public_note", flat=True))
    assert "expert" not in notes


# Demo data (CONTRACT.md)


@pytest.mark.django_db
def test_seed_demo_has_applications_for_each_reviewer_alone_and_one_approved(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    settings.MEDIA_ROOT = tmp_path
    for _ in range(2):  # idempotent
        call_command("seed_demo", stdout=StringIO())
    under_review = Application.objects.filter(state=State.IN_REVIEW)
    reviewers_of = [
        sorted(a.assignments.values_list("reviewer__username", flat=True)) for a in under_review
    ]
    assert ["reviewer"] in reviewers_of and ["reviewer2"] in reviewers_of
    approved = Application.objects.get(state=State.APPROVED)
    assert approved.decisions.get().allocations.count() == 1
    assert ReviewAssignment.objects.filter(application__in=under_review).count() == 2
