"""The review workflow in the admin: who sees which application, conflicts, hidden scores."""

import pytest
from django.urls import reverse

from tests.conftest import client_for
from tests.factories import GOOD_SCORES, make_application, make_review
from vetting.models import Application, Review, ReviewAssignment, Rubric
from vetting.services import review as workflow

pytestmark = pytest.mark.django_db

LIST = "admin:vetting_reviewassignment_changelist"


def page(assignment):
    return reverse("admin:vetting_reviewassignment_change", args=[assignment.pk])


@pytest.fixture
def application(applicant, open_call):
    return make_application(
        applicant=applicant,
        call=open_call,
        state="in_review",
        abstract="A SECRET abstract about Finnish law.",
    )


@pytest.fixture
def assignment(application, reviewer, call_manager):
    return workflow.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)


def score_post(**overrides):
    data = {f"score_{key}": str(value) for key, value in GOOD_SCORES.items()}
    data.update({"comment": "Convincing.", "recommendation": "approve", "submit": "1"})
    data.update(overrides)
    return data


def test_applicant_has_no_admin_access(client, applicant, assignment):
    response = client_for(client, applicant).get(page(assignment))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_reviewer_sees_only_their_assignments(
    client, application, assignment, other_applicant, open_call, other_reviewer, call_manager
):
    other = make_application(
        applicant=other_applicant, call=open_call, state="in_review", title="Someone else's project"
    )
    workflow.reviewer_assign(application=other, reviewer=other_reviewer, actor=call_manager)
    content = client_for(client, assignment.reviewer).get(reverse(LIST)).content.decode()
    assert application.title in content
    assert "Someone else&#x27;s project" not in content and "Someone else's project" not in content


def test_reviewer_cannot_open_an_unassigned_application(
    client, application, other_reviewer, assignment
):
    client_for(client, other_reviewer)
    assert client.get(page(assignment)).status_code == 404
    assert client.get(reverse("admin:vetting_application_changelist")).status_code == 403
    url = reverse("admin:vetting_application_change", args=[application.pk])
    assert client.get(url).status_code == 403


def test_reviewer_confirms_no_conflict_before_seeing_the_application(client, assignment, reviewer):
    client_for(client, reviewer)
    first = client.get(page(assignment)).content.decode()
    assert "Conflict of interest" in first and "SECRET" not in first
    client.post(page(assignment), {"confirm": "1", "explanation": ""})
    assignment.refresh_from_db()
    assert assignment.state == ReviewAssignment.State.ACCEPTED
    content = client.get(page(assignment)).content.decode()
    assert "SECRET" in content
    assert "Ethics self-assessment" in content and "AI Act commitments" in content


def test_declaring_a_conflict_releases_the_assignment(client, assignment, reviewer):
    client_for(client, reviewer)
    response = client.post(page(assignment), {"declare": "1", "explanation": "Former employer"})
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.state == ReviewAssignment.State.RELEASED
    assert client.get(page(assignment)).status_code == 404
    assert client.get(reverse(LIST)).content.decode().count("Finnish") == 0


def test_declaring_a_conflict_needs_an_explanation(client, assignment, reviewer):
    client_for(client, reviewer)
    content = client.post(page(assignment), {"declare": "1"}).content.decode()
    assert "what the conflict of interest is" in content
    assignment.refresh_from_db()
    assert assignment.state == ReviewAssignment.State.PENDING


def test_reviewer_scores_and_submitting_locks_the_review(client, assignment, reviewer):
    client_for(client, reviewer)
    client.post(page(assignment), {"confirm": "1"})
    draft = score_post(submit="", save="1", score_ethics="")
    del draft["submit"]
    client.post(page(assignment), draft)
    review_ = Review.objects.get(assignment=assignment)
    assert review_.submitted_at is None and review_.scores.count() == 4
    client.post(page(assignment), score_post())
    review_.refresh_from_db()
    assert review_.submitted_at is not None and review_.weighted_score == 4.0
    client.post(page(assignment), score_post(score_ethics="0"))
    assert review_.scores.get(criterion__key="ethics").score == 4
    assert "Save draft" not in client.get(page(assignment)).content.decode()


def test_other_reviewers_scores_stay_hidden_until_ones_own_is_submitted(
    client, application, reviewer, other_reviewer, call_manager
):
    make_review(
        application=application,
        reviewer=other_reviewer,
        manager=call_manager,
        scores={**GOOD_SCORES, "technical": 1},
    )
    mine = workflow.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)
    workflow.conflict_confirm_none(assignment=mine, reviewer=reviewer)
    client_for(client, reviewer)
    before = client.get(page(mine)).content.decode()
    assert "shown once you have submitted yours" in before
    assert "Solid plan." not in before
    client.post(page(mine), score_post())
    after = client.get(page(mine)).content.decode()
    assert "Solid plan." in after
    assert "Reviewer 1" in after and "expert2" not in after


def test_call_manager_sees_every_assignment_and_reviewer_names(
    client, application, assignment, call_manager, other_reviewer
):
    make_review(application=application, reviewer=other_reviewer, manager=call_manager)
    client_for(client, call_manager)
    content = client.get(reverse(LIST)).content.decode()
    assert "expert" in content and "expert2" in content
    detail = client.get(page(assignment)).content.decode()
    assert "SECRET" in detail and "expert2" in detail
    url = reverse("admin:vetting_application_change", args=[application.pk])
    assert client.get(url).status_code == 200


def test_call_manager_assigns_by_hand_and_conflicts_are_refused(
    client, application, call_manager, reviewer, applicant
):
    client_for(client, call_manager)
    add = reverse("admin:vetting_reviewassignment_add")
    response = client.post(add, {"application": application.pk, "reviewer": reviewer.pk})
    assert response.status_code == 302
    assert ReviewAssignment.objects.filter(application=application, reviewer=reviewer).exists()
    reviewer.email = "other@founder.example"
    reviewer.save()
    second = make_application(
        applicant=applicant,
        call=application.call,
        state="in_review",
        organisation=application.organisation,
    )
    content = client.post(add, {"application": second.pk, "reviewer": reviewer.pk}).content
    assert b"shares the e-mail domain" in content


def test_auto_assign_action_balances_and_reports(
    client, application, call_manager, reviewer, other_reviewer
):
    client_for(client, call_manager)
    response = client.post(
        reverse("admin:vetting_application_changelist"),
        {"action": "auto_assign_reviewers", "_selected_action": [application.pk]},
        follow=True,
    )
    assert "assigned expert, expert2" in response.content.decode()
    assert application.assignments.count() == 2


def test_override_action_needs_a_reason(client, application, call_manager):
    Application.objects.filter(pk=application.pk).update(state=Application.State.INELIGIBLE)
    client_for(client, call_manager)
    data = {"action": "override_ineligibility", "_selected_action": [application.pk]}
    url = reverse("admin:vetting_application_changelist")
    client.post(url, {**data, "apply": "1", "reason": ""})
    application.refresh_from_db()
    assert application.state == Application.State.INELIGIBLE
    client.post(url, {**data, "apply": "1", "reason": "Seat moved to Tallinn"})
    application.refresh_from_db()
    assert application.state == Application.State.IN_REVIEW


def test_call_manager_edits_the_rubric_and_reviewers_cannot(
    client, application, call_manager, reviewer, assignment
):
    rubric = Rubric.objects.get(call=application.call)
    assert rubric.criteria.count() == 5
    assert call_manager.has_perm("vetting.change_rubriccriterion")
    assert not reviewer.has_perm("vetting.change_rubriccriterion")
    response = client_for(client, call_manager).get(
        reverse("admin:vetting_rubric_change", args=[rubric.pk])
    )
    assert response.status_code == 200 and b"AI Act readiness" in response.content


def test_reviewer_downloads_the_annex_only_after_the_conflict_statement(
    client, assignment, reviewer
):
    client_for(client, reviewer)
    url = reverse("admin:vetting_reviewassignment_annex", args=[assignment.pk])
    assert client.get(url).status_code == 403
    workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("released", [False, True], ids=["unassigned", "released"])
def test_a_reviewer_cannot_download_the_annex_through_someone_elses_assignment(
    client, application, assignment, reviewer, other_reviewer, call_manager, released
):
    workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)
    annex = reverse("admin:vetting_reviewassignment_annex", args=[assignment.pk])
    own = client_for(client, reviewer).get(annex)
    assert own.status_code == 200 and b"".join(own.streaming_content).startswith(b"%PDF")
    if released:
        theirs = workflow.reviewer_assign(
            application=application, reviewer=other_reviewer, actor=call_manager
        )
        workflow.conflict_declare(
            assignment=theirs, reviewer=other_reviewer, explanation="My former employer."
        )
        theirs.refresh_from_db()
        assert theirs.state == ReviewAssignment.State.RELEASED

    client_for(client, other_reviewer)
    response = client.get(annex)

    assert response.status_code == 404
    assert not response.streaming and b"%PDF" not in response.content
    if released:
        own_released = reverse("admin:vetting_reviewassignment_annex", args=[theirs.pk])
        response = client.get(own_released)
        assert response.status_code == 404
        assert not response.streaming and b"%PDF" not in response.content


def test_applicant_history_never_names_reviewers(client, applicant, application, assignment):
    workflow.conflict_confirm_none(assignment=assignment, reviewer=assignment.reviewer)
    content = (
        client_for(client, applicant)
        .get(reverse("vetting:detail", args=[application.pk]))
        .content.decode()
    )
    assert "A reviewer was assigned." in content
    assert "expert" not in content
    api = client.get(f"/api/v1/applications/{application.pk}/").content.decode()
    assert "expert" not in api


def test_a_reviewer_taken_out_of_the_role_no_longer_sees_the_assignment(
    client, assignment, reviewer
):
    workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)
    client_for(client, reviewer)
    annex = reverse("admin:vetting_reviewassignment_annex", args=[assignment.pk])
    assert "SECRET" in client.get(page(assignment)).content.decode()
    reviewer.groups.clear()
    assert client.get(page(assignment)).status_code in (403, 404)
    assert client.get(annex).status_code in (403, 404)


def test_review_page_shows_figures_people_can_read(client, application, assignment, reviewer):
    workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)
    text = client_for(client, reviewer).get(page(assignment)).content.decode()
    application.refresh_from_db()
    hardware = application.estimate_snapshot["total"]["flop_hardware"]
    assert f"{hardware:.1e}".split("e")[0] + " × 10" in text
    assert str(int(hardware)) not in text and repr(hardware) not in text
    assert "below the GPAI indication" in text and "below_gpai" not in text
    assert "Finland" in text  # the organisation's country by name
    assert f"{application.parameters:,}" in text


def test_reviewer_profiles_list_every_reviewer_auto_assign_picks_from(
    client, call_manager, reviewer, other_reviewer
):
    from vetting.models import ReviewerProfile

    ReviewerProfile.objects.create(user=other_reviewer, active=False)
    text = client_for(client, call_manager).get("/admin/vetting/reviewerprofile/").content.decode()
    assert reviewer.username in text and other_reviewer.username in text
    assert ReviewerProfile.objects.filter(user=reviewer).exists()
    assert "picked by auto-assign" in text.lower()
    # the active reviewer: active and picked; the other: neither
    assert text.count('alt="True"') == 2 and text.count('alt="False"') == 2
