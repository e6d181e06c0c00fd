"""The review workflow over the API, with the admin's rules: reviewers see only their own
assignments and read an application only after stating no conflict; other scores stay hidden
until their own review is in; call managers assign, rank and decide."""

import pytest

from tests.factories import GOOD_SCORES, make_application, make_review, make_user
from vetting.models import Application, ReviewAssignment
from vetting.services import review as workflow

pytestmark = pytest.mark.django_db

ASSIGNMENTS = "/api/v1/review-assignments/"


@pytest.fixture
def application(applicant, open_call):
    return make_application(
        applicant=applicant, call=open_call, state="in_review", abstract="A SECRET abstract."
    )


@pytest.fixture
def assignment(application, reviewer, call_manager):
    return workflow.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)


def as_(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_reviewer_reads_the_application_only_after_stating_no_conflict(
    api_client, assignment, reviewer
):
    client = as_(api_client, reviewer)
    detail = client.get(f"{ASSIGNMENTS}{assignment.pk}/").json()
    assert detail["state"] == "pending"
    assert detail["application_details"] is None
    assert "SECRET" not in str(detail)
    response = client.post(f"{ASSIGNMENTS}{assignment.pk}/no-conflict/")
    assert response.status_code == 200
    assert response.json()["application_details"]["abstract"] == "A SECRET abstract."
    keys = [c["key"] for c in response.json()["rubric"]["criteria"]]
    assert keys == list(GOOD_SCORES)


def test_reviewer_sees_only_their_own_assignments(api_client, assignment, other_reviewer, reviewer):
    assert [a["id"] for a in as_(api_client, reviewer).get(ASSIGNMENTS).json()["results"]] == [
        assignment.pk
    ]
    client = as_(api_client, other_reviewer)
    assert client.get(ASSIGNMENTS).json()["results"] == []
    assert client.get(f"{ASSIGNMENTS}{assignment.pk}/").status_code == 404
    assert (
        client.post(f"{ASSIGNMENTS}{assignment.pk}/conflict/", {"conflict": False}).status_code
        == 404
    )


def test_declaring_a_conflict_releases_the_assignment(api_client, assignment, reviewer):
    client = as_(api_client, reviewer)
    refused = client.post(f"{ASSIGNMENTS}{assignment.pk}/conflict/", {"explanation": " "})
    assert refused.status_code == 400
    response = client.post(
        f"{ASSIGNMENTS}{assignment.pk}/conflict/", {"explanation": "I advise them."}
    )
    assert response.status_code == 204
    assignment.refresh_from_db()
    assert assignment.state == ReviewAssignment.State.RELEASED


def test_reviewer_saves_then_submits_and_only_then_sees_other_reviews(
    api_client, application, assignment, reviewer, call_manager
):
    make_review(application=application, manager=call_manager)
    client = as_(api_client, reviewer)
    client.post(f"{ASSIGNMENTS}{assignment.pk}/no-conflict/")
    assert client.get(f"{ASSIGNMENTS}{assignment.pk}/").json()["other_reviews"] is None
    draft = client.put(
        f"{ASSIGNMENTS}{assignment.pk}/review/",
        {"scores": {"technical": 3}, "comment": "So far"},
        format="json",
    )
    assert draft.status_code == 200 and draft.json()["submitted_at"] is None
    incomplete = client.post(
        f"{ASSIGNMENTS}{assignment.pk}/review/submit/", {"scores": {"technical": 3}}, format="json"
    )
    assert incomplete.status_code == 409  # the call's rubric asks for every score
    submitted = client.post(
        f"{ASSIGNMENTS}{assignment.pk}/review/submit/",
        {"scores": GOOD_SCORES, "recommendation": "approve"},
        format="json",
    )
    assert submitted.status_code == 200
    assert submitted.json()["weighted_score"] == pytest.approx(4.0)
    others = client.get(f"{ASSIGNMENTS}{assignment.pk}/").json()["other_reviews"]
    assert len(others) == 1 and others[0]["reviewer"] is None
    again = client.put(
        f"{ASSIGNMENTS}{assignment.pk}/review/", {"scores": GOOD_SCORES}, format="json"
    )
    assert again.status_code == 409


def test_only_call_managers_assign_and_auto_assign(
    api_client, application, reviewer, other_reviewer, call_manager
):
    body = {"application": application.pk, "reviewer": reviewer.pk}
    assert as_(api_client, reviewer).post(ASSIGNMENTS, body).status_code == 403
    made = as_(api_client, call_manager).post(ASSIGNMENTS, body)
    assert made.status_code == 201 and made.json()["reviewer"] == reviewer.username
    assert api_client.post(ASSIGNMENTS, body).status_code == 409
    auto = api_client.post(f"{ASSIGNMENTS}auto/", {"application": application.pk})
    assert auto.status_code == 201
    assert {a["reviewer"] for a in auto.json()} == {other_reviewer.username}


def test_applicants_and_operators_have_no_review_api(api_client, assignment, applicant, operator):
    for user in (applicant, operator):
        assert as_(api_client, user).get(ASSIGNMENTS).status_code == 403


def test_call_manager_ranks_and_decides(api_client, applicant, open_call, call_manager, reviewer):
    application = make_application(applicant=applicant, call=open_call, state="reviewed")
    client = as_(api_client, call_manager)
    ranking = client.get(f"/api/v1/ranking/{application.access_mode_id}/")
    assert ranking.status_code == 200
    row = next(r for r in ranking.json()["rows"] if r["application"]["id"] == application.pk)
    grants = row["proposed"] or row["requested"]
    decided = client.post(
        "/api/v1/decisions/",
        {
            "application": application.pk,
            "outcome": "approved",
            "reason": "Strong.",
            "grants": grants,
        },
        format="json",
    )
    assert decided.status_code == 201, decided.json()
    assert decided.json()["allocations"]
    application.refresh_from_db()
    assert application.state == Application.State.APPROVED
    twice = client.post(
        "/api/v1/decisions/",
        {"application": application.pk, "outcome": "rejected", "reason": "No."},
        format="json",
    )
    assert twice.status_code == 409
    assert as_(api_client, reviewer).get("/api/v1/decisions/").status_code == 403
    assert api_client.get(f"/api/v1/ranking/{application.access_mode_id}/").status_code == 403


def test_a_decision_without_a_reason_is_400(api_client, applicant, open_call, call_manager):
    application = make_application(applicant=applicant, call=open_call, state="reviewed")
    response = as_(api_client, call_manager).post(
        "/api/v1/decisions/",
        {"application": application.pk, "outcome": "rejected", "reason": " "},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "errors"}


def test_errors_have_one_shape(api_client, reviewer):
    make_user(username="someone")
    client = as_(api_client, reviewer)
    for response in (
        client.get(f"{ASSIGNMENTS}999999/"),
        client.post(ASSIGNMENTS, {"application": "x"}),
        client.post(f"{ASSIGNMENTS}999999/no-conflict/"),
        client.get("/api/v1/decisions/"),
    ):
        assert set(response.json()) == {"detail", "errors"}, response.json()


def test_lists_and_the_ranking_take_the_same_queries_whatever_the_rows(
    api_client, applicant, open_call, call_manager
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_(api_client, call_manager)

    def counts() -> tuple[int, int]:
        application = make_application(applicant=applicant, call=open_call, state="in_review")
        workflow.reviewer_assign(
            application=application, reviewer=make_user(role="reviewer"), actor=call_manager
        )
        with CaptureQueriesContext(connection) as listed:
            client.get(ASSIGNMENTS)
        with CaptureQueriesContext(connection) as ranked:
            client.get(f"/api/v1/ranking/{application.access_mode_id}/")
        return len(listed), len(ranked)

    counts()  # the first request also reads the manager's permissions
    assert counts() == counts()
