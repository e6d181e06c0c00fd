"""Factories for the vetting workflow: applications at each stage, reviews with scores."""

from core import roles
from demo.builders import application_for
from tests.conftest import _person
from vetting.models import Application, ReviewAssignment
from vetting.services import intake as services
from vetting.services import review as workflow

GOOD_SCORES = {"technical": 4, "innovation": 4, "resources": 4, "ethics": 4, "ai_act": 4}


def submitted(user, call, **kwargs) -> Application:
    application = application_for(user, call, **kwargs)
    return services.application_submit(application=application, actor=user)


def in_review(user, call, **kwargs) -> Application:
    application = submitted(user, call, **kwargs)
    workflow.application_screen(application_id=application.pk)
    application.refresh_from_db()
    assert application.state == Application.State.IN_REVIEW, list(
        application.screening_flags.values_list("code", "message")
    )
    return application


def reviewer_person(username: str):
    return _person(username, roles.REVIEWER, staff=True)


def accepted(application, reviewer, manager) -> ReviewAssignment:
    assignment = workflow.reviewer_assign(application=application, reviewer=reviewer, actor=manager)
    return workflow.conflict_confirm_none(assignment=assignment, reviewer=reviewer)


def review(application, reviewer, manager, scores=None, recommendation="approve"):
    assignment = accepted(application, reviewer, manager)
    return workflow.review_submit(
        assignment=assignment,
        reviewer=reviewer,
        scores=scores or GOOD_SCORES,
        recommendation=recommendation,
        comment="Solid plan.",
    )


def reviewed(user, call, reviewers, manager, scores=(None, None), **kwargs) -> Application:
    application = in_review(user, call, **kwargs)
    for person, score in zip(reviewers, scores, strict=False):
        review(application, person, manager, scores=score)
    application.refresh_from_db()
    assert application.state == Application.State.REVIEWED
    return application
