"""The call manager's ranking page and the decisions taken from it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocations.models import Allocation
from systems.models import Partition
from tests.conftest import client_for
from tests.factories import GOOD_SCORES, make_application
from vetting.models import Application, ApplicationResource, Decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_lane(open_call):
    return open_call.access_modes.get(kind="fast_lane")


@pytest.fixture
def leonardo(open_call):
    return Partition.objects.get(cluster__name="leonardo")


def url(mode):
    return reverse("ranking:mode", args=[mode.pk])


@pytest.mark.parametrize("who", ["applicant", "reviewer", "operator"])
def test_only_call_managers_see_the_ranking(client, request, fast_lane, who):
    response = client_for(client, request.getfixturevalue(who)).get(url(fast_lane))
    assert response.status_code in (302, 403)


def test_ranking_orders_by_score_and_proposes_grants_within_capacity(
    client,
    applicant,
    other_applicant,
    open_call,
    fast_lane,
    reviewer,
    other_reviewer,
    call_manager,
    leonardo,
):
    panel = [reviewer, other_reviewer]
    weak = make_application(
        applicant=applicant,
        call=open_call,
        state="reviewed",
        reviewers=panel,
        manager=call_manager,
        scores=({**GOOD_SCORES, "technical": 2}, None),
        title="Weaker project",
    )
    strong = make_application(
        applicant=other_applicant,
        call=open_call,
        state="reviewed",
        reviewers=panel,
        manager=call_manager,
        scores=({**GOOD_SCORES, "technical": 5}, None),
        title="Stronger project",
    )
    waiting = make_application(
        applicant=applicant,
        call=open_call,
        state="in_review",
        organisation=weak.organisation,
        title="Unreviewed",
    )
    response = client_for(client, call_manager).get(url(fast_lane))
    content = response.content.decode()
    assert content.index("Stronger project") < content.index("Weaker project")
    assert content.index("Weaker project") < content.index("Unreviewed")
    assert f'name="grant_{strong.pk}_{leonardo.pk}" value="20000"' in content
    assert waiting.title in content


def test_ranking_page_queries_do_not_grow_with_applications(
    client, applicant, open_call, fast_lane, call_manager, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_application(applicant=applicant, call=open_call, state="in_review")
    client_for(client, call_manager)
    with CaptureQueriesContext(connection) as one:
        client.get(url(fast_lane))
    organisation = Application.objects.get().organisation
    for number in range(4):
        make_application(
            applicant=applicant,
            call=open_call,
            state="in_review",
            organisation=organisation,
            title=f"Project {number}",
        )
    with django_assert_max_num_queries(len(one)):
        client.get(url(fast_lane))


def test_bulk_approve_from_the_ranking_creates_allocations(
    client,
    applicant,
    other_applicant,
    open_call,
    fast_lane,
    reviewer,
    other_reviewer,
    call_manager,
    leonardo,
):
    panel = [reviewer, other_reviewer]
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
    client_for(client, call_manager).post(
        url(fast_lane),
        {
            "selected": [first.pk, second.pk],
            "decision": "approve",
            "reason": "Selected by the panel.",
            f"grant_{first.pk}_{leonardo.pk}": "20000",
            f"grant_{second.pk}_{leonardo.pk}": "10,000",
        },
    )
    assert Allocation.objects.filter(organisation=first.organisation).get().gpu_hours == 20_000
    assert Allocation.objects.filter(organisation=second.organisation).get().gpu_hours == 10_000
    assert Decision.objects.filter(outcome="approved").count() == 2


def test_one_by_one_reject_needs_a_reason_and_reports_errors(
    client, applicant, open_call, fast_lane, reviewer, other_reviewer, call_manager
):
    application = make_application(
        applicant=applicant,
        call=open_call,
        state="reviewed",
        reviewers=[reviewer, other_reviewer],
        manager=call_manager,
    )
    client_for(client, call_manager)
    response = client.post(
        url(fast_lane),
        {"selected": [application.pk], "decision": "reject", "reason": ""},
        follow=True,
    )
    assert "Give a reason" in response.content.decode()
    application.refresh_from_db()
    assert application.state == Application.State.REVIEWED
    client.post(
        url(fast_lane), {"selected": [application.pk], "decision": "waitlist", "reason": "Full"}
    )
    application.refresh_from_db()
    assert application.state == Application.State.WAITLISTED


def test_the_ranking_page_is_in_the_admin_index_for_call_managers_only(
    client, call_manager, reviewer, open_call
):
    index = client_for(client, call_manager).get("/admin/").content.decode()
    assert "Ranking and decisions" in index and reverse("ranking:index") in index
    assert (
        "Ranking and decisions" not in client_for(client, reviewer).get("/admin/").content.decode()
    )


def test_every_grant_input_has_a_label(
    client, applicant, open_call, fast_lane, reviewer, other_reviewer, call_manager
):
    make_application(
        applicant=applicant,
        call=open_call,
        reviewers=[reviewer, other_reviewer],
        manager=call_manager,
        state="reviewed",
    )
    import re

    text = client_for(client, call_manager).get(url(fast_lane)).content.decode()
    inputs = re.findall(r'<input type="number"[^>]*id="([^"]+)"', text)
    assert inputs
    for input_id in inputs:
        assert f'<label for="{input_id}">' in text
    assert "Ranking and decisions</a> &rsaquo;" in text  # breadcrumb back to the index


def _in_review(applicant, call, count: int, start: int = 0, organisation=None):
    for number in range(start, start + count):
        application = make_application(
            applicant=applicant,
            call=call,
            state="in_review",
            organisation=organisation,
            title=f"Project {number}",
        )
        organisation = application.organisation
    return organisation


def test_ranking_page_takes_the_same_queries_for_3_and_30_applications(
    client, applicant, open_call, fast_lane, call_manager
):
    organisation = _in_review(applicant, open_call, 3)
    client_for(client, call_manager)
    client.get(url(fast_lane))
    with CaptureQueriesContext(connection) as few:
        client.get(url(fast_lane))
    _in_review(applicant, open_call, 27, start=3, organisation=organisation)
    with CaptureQueriesContext(connection) as many:
        content = client.get(url(fast_lane)).content.decode()
    assert len(many) == len(few)
    assert content.count('class="ranking-row"') == 30


def test_ranking_is_shown_a_page_at_a_time_with_the_capacity_of_all(
    client, applicant, open_call, fast_lane, call_manager, monkeypatch
):
    from vetting.views import ranking

    monkeypatch.setattr(ranking, "ROWS_PER_PAGE", 2)
    _in_review(applicant, open_call, 3)
    client_for(client, call_manager)

    first_page = client.get(url(fast_lane))
    second_page = client.get(url(fast_lane) + "?page=2")
    first, second = first_page.content.decode(), second_page.content.decode()

    assert first.count('class="ranking-row"') == 2 and second.count('class="ranking-row"') == 1
    assert 'href="?page=2" rel="next"' in first and 'href="?page=1" rel="prev"' in second
    shown = {title for title in ("Project 0", "Project 1", "Project 2") if title in first}
    assert len(shown) == 2 and not any(title in second for title in shown)
    # the capacity table counts the requests of every page
    asked = sum(
        ApplicationResource.objects.filter(application__access_mode=fast_lane).values_list(
            "gpu_hours", flat=True
        )
    )
    for page in (first_page, second_page):
        assert sum(row["requested"] for row in page.context["capacity"]) == asked > 0


def test_flags_are_named_in_words_with_their_message_on_hover(
    client, applicant, open_call, fast_lane, call_manager
):
    from vetting.models import ScreeningFlag

    _in_review(applicant, open_call, 1)
    application = Application.objects.get()
    message = "The organisation has 400 staff: not an SME."
    ScreeningFlag.objects.create(
        application=application, code="not_sme", severity="blocking", message=message
    )
    ScreeningFlag.objects.create(
        application=application, code="a_future_rule", severity="warning", message="Later."
    )

    content = client_for(client, call_manager).get(url(fast_lane)).content.decode()

    assert f'<span title="{message}">Not an SME (blocking)</span>' in content
    assert '<span title="Later.">A future rule</span>' in content
    assert "not_sme" not in content


def test_decision_buttons_appear_only_when_an_application_on_the_page_can_be_decided(
    client, applicant, open_call, fast_lane, call_manager
):
    _in_review(applicant, open_call, 2)
    client_for(client, call_manager)

    waiting = client.get(url(fast_lane)).content.decode()
    assert "Approve selected" not in waiting and 'name="selected"' not in waiting
    assert 'class="grant-input"' not in waiting  # what they asked for, nothing to grant yet
    assert "No application on this page has all its reviews yet" in waiting

    make_application(
        applicant=applicant, call=open_call, state="reviewed", manager=call_manager,
        title="Reviewed project",
    )  # fmt: skip
    ready = client.get(url(fast_lane)).content.decode()
    assert "Approve selected" in ready and ready.count('name="selected"') == 1
    assert ready.count('class="grant-input"') == 1
    assert "No application on this page has all its reviews yet" not in ready
