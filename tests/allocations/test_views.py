"""Applicant pages: members see their organisations' allocations, owners manage users and ask
for changes, everyone else gets 404."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocations.models import Allocation, ChangeRequest
from tests.conftest import client_for
from tests.factories import days, make_allocation, make_organisation

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(db):
    from tests.factories import make_user

    return make_user(username="colleague")


@pytest.fixture
def allocation(reference_data, applicant, member):
    return make_allocation(organisation=make_organisation(owner=applicant, member=member))


def detail(allocation):
    return reverse("allocations:detail", args=[allocation.pk])


def test_applicant_sees_own_allocations_with_amount_dates_account_state_and_users(
    client, applicant, allocation
):
    client_for(client, applicant)

    listing = client.get(reverse("allocations:list")).content.decode()
    page = client.get(detail(allocation)).content.decode()

    assert "acme_llm" in listing and "50,000" in listing
    for text in ("acme_llm", "50,000", "Active", "alice", "bob", "Add user"):
        assert text in page


def test_other_applicants_allocations_are_not_listed_and_404(
    client, other_applicant, outsider, allocation
):
    make_allocation(
        organisation=make_organisation(legal_name="Rival Oy", owner=other_applicant),
        account="rival_1",
    )
    for person in (other_applicant, outsider):
        client_for(client, person)
        assert "acme_llm" not in client.get(reverse("allocations:list")).content.decode()
        assert client.get(detail(allocation)).status_code == 404
        response = client.post(
            reverse("allocations:user-add", args=[allocation.pk]), {"username": "eve"}
        )
        assert response.status_code == 404
    assert not allocation.users.filter(username="eve").exists()


def test_anonymous_visitor_is_sent_to_log_in(client, allocation):
    response = client.get(detail(allocation))

    assert response.status_code == 302 and "login" in response["Location"]


def test_owner_adds_and_removes_cluster_users(client, applicant, allocation):
    client_for(client, applicant)

    added = client.post(
        reverse("allocations:user-add", args=[allocation.pk]), {"username": "carol"}
    )
    removed = client.post(
        reverse("allocations:user-remove", args=[allocation.pk]), {"username": "alice"}
    )

    assert added.status_code == removed.status_code == 302
    assert sorted(allocation.users.values_list("username", flat=True)) == ["bob", "carol"]
    assert allocation.events.filter(action="user_added", actor=applicant).exists()


@pytest.mark.parametrize(
    ("username", "message"),
    [("Carol Smith", "not a valid cluster user name"), ("alice", "already a user")],
)
def test_invalid_user_names_are_refused_with_a_message(
    client, applicant, allocation, username, message
):
    client_for(client, applicant)

    response = client.post(
        reverse("allocations:user-add", args=[allocation.pk]), {"username": username}, follow=True
    )

    # post/redirect/get: the page shows what was typed and why it was refused, at its own URL
    assert response.redirect_chain == [(f"{detail(allocation)}#users-title", 302)]
    assert response.status_code == 200
    text = response.content.decode()
    assert message in text and f'value="{username}"' in text
    # a reload shows the page again, with a fresh form and nothing posted twice
    assert message not in client.get(detail(allocation)).content.decode()


def test_member_sees_but_cannot_manage(client, member, allocation):
    client_for(client, member)

    page = client.get(detail(allocation)).content.decode()
    response = client.post(
        reverse("allocations:user-remove", args=[allocation.pk]), {"username": "alice"}
    )

    assert "alice" in page and "Add user" not in page and "Send request" not in page
    assert response.status_code == 403
    assert allocation.users.filter(username="alice").exists()


def test_owner_requests_an_extension_with_a_justification(client, applicant, allocation):
    client_for(client, applicant)
    url = reverse("allocations:change-request", args=[allocation.pk])

    missing = client.post(url, {"kind": "extension", "justification": "later"}, follow=True)
    response = client.post(
        url, {"kind": "extension", "new_end": days(200).isoformat(), "justification": "Rerun"}
    )

    assert missing.status_code == 200 and "Give the new end date" in missing.content.decode()
    assert missing.redirect_chain == [(f"{detail(allocation)}#changes-title", 302)]
    assert response.status_code == 302
    change = ChangeRequest.objects.get()
    assert (change.kind, change.new_end, change.requested_by) == ("extension", days(200), applicant)
    assert "Rerun" in client.get(detail(allocation)).content.decode()


def test_owner_cannot_ask_for_an_earlier_end(client, applicant, allocation):
    client_for(client, applicant)

    response = client.post(
        reverse("allocations:change-request", args=[allocation.pk]),
        {"kind": "extension", "new_end": days(1).isoformat(), "justification": "x"},
        follow=True,
    )

    assert response.status_code == 200
    assert "new end date after" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_list_queries_do_not_grow_with_rows(
    client, applicant, reference_data, django_assert_max_num_queries
):
    organisation = make_organisation(owner=applicant)
    make_allocation(organisation=organisation, account="a_0")
    client_for(client, applicant)
    with CaptureQueriesContext(connection) as one_row:
        client.get(reverse("allocations:list"))
    for number in range(1, 12):
        make_allocation(organisation=organisation, account=f"a_{number}", cluster="leonardo")

    with django_assert_max_num_queries(len(one_row)):
        response = client.get(reverse("allocations:list"))

    assert len(response.context["rows"]) == Allocation.objects.count() == 12


def test_detail_links_to_the_usage_of_the_allocation_and_its_model(client, applicant, allocation):
    allocation.model_name = "acme/legal-7b"
    allocation.save(update_fields=["model_name"])
    page = client_for(client, applicant).get(detail(allocation)).content.decode()
    assert reverse("usage:allocation", args=[allocation.pk]) in page
    model_page = reverse("usage:model", args=["acme/legal-7b"])
    assert model_page in page
    assert client.get(model_page).status_code == 200


def test_model_page_counts_the_names_the_threshold_check_counts_as_one_model(
    client, applicant, allocation
):
    allocation.model_name = "  Acme/Legal-7B "
    allocation.save(update_fields=["model_name"])
    for spelling in ("acme/legal-7b", "ACME/LEGAL-7B", "Acme/Legal-7B"):
        page = client_for(client, applicant).get(reverse("usage:model", args=[spelling]))
        assert page.status_code == 200
        assert [a.pk for a in page.context["scope"].allocations] == [allocation.pk]


def test_list_shows_used_and_remaining_hours_with_a_bar(client, applicant, allocation):
    from tests.factories import make_usage_record

    make_usage_record(allocation=allocation, gpu_seconds=3600 * 12_500)
    listing = client_for(client, applicant).get(reverse("allocations:list")).content.decode()
    assert "12,500.0" in listing and "37,500.0" in listing and "25 %" in listing
    assert '<meter class="use-meter" min="0" max="50000.0" value="12500.0"' in listing
    assert reverse("usage:allocation", args=[allocation.pk]) in listing


def test_detail_warns_from_the_first_alert_level_and_projects_to_the_end(
    client, applicant, reference_data
):
    from tests.factories import make_usage_record

    # 10 days in (today included), 800 GPU-hours a day: 8,000 of 10,000 used, 80 %
    allocation = make_allocation(
        organisation=make_organisation(owner=applicant),
        gpu_hours=10_000,
        start=days(-9),
        end=days(20),
    )
    make_usage_record(allocation=allocation, gpu_seconds=3600 * 8_000)
    page = client_for(client, applicant).get(detail(allocation)).content.decode()
    assert 'id="use-warning"' in page and "80 % of the grant is used" in page
    assert "800.0 GPU-hours a day" in page
    assert f"the grant runs out around {days(3):%-d %b %Y}" in page


def test_detail_below_the_first_level_has_no_warning_and_projects_the_end_use(
    client, applicant, reference_data
):
    from tests.factories import make_usage_record

    allocation = make_allocation(
        organisation=make_organisation(owner=applicant),
        gpu_hours=10_000,
        start=days(-9),
        end=days(10),
    )
    make_usage_record(allocation=allocation, gpu_seconds=3600 * 1_000)
    page = client_for(client, applicant).get(detail(allocation)).content.decode()
    assert 'id="use-warning"' not in page
    assert "about 2,000 GPU-hours (20 %) will be used by the end date" in page


def test_a_scheduled_allocation_says_when_it_starts_and_whether_it_is_on_the_scheduler(
    client, applicant, reference_data
):
    from django.utils import timezone

    allocation = make_allocation(
        organisation=make_organisation(owner=applicant), start=days(14), end=days(100)
    )
    client_for(client, applicant)
    page = client.get(detail(allocation)).content.decode()
    assert f"This allocation starts on {days(14):%-d %b %Y}" in page
    assert "has not set it up on LUMI" in page
    Allocation.objects.filter(pk=allocation.pk).update(first_exported_at=timezone.now())
    page = client.get(detail(allocation)).content.decode()
    assert "set it up on LUMI's scheduler on" in page
    assert (
        f"starts {days(14):%-d %b %Y}" in client.get(reverse("allocations:list")).content.decode()
    )


def test_cluster_users_section_says_how_to_get_an_account_on_the_system(
    client, applicant, allocation
):
    client_for(client, applicant)
    page = client.get(detail(allocation)).content.decode()
    assert "Someone has no log-in on LUMI yet?" in page
    assert "user support" in page
    allocation.cluster.account_instructions = "Apply at https://accounts.example.eu/lumi."
    allocation.cluster.save()
    page = client.get(detail(allocation)).content.decode()
    assert '<a href="https://accounts.example.eu/lumi"' in page


def test_opening_a_form_address_directly_leads_to_the_allocation_page(
    client, applicant, allocation
):
    client_for(client, applicant)
    for name in ("allocations:user-add", "allocations:change-request"):
        response = client.get(reverse(name, args=[allocation.pk]))
        assert response.status_code == 302 and response["Location"] == detail(allocation)


def test_conditionally_required_fields_say_when_they_are_needed(client, applicant, allocation):
    text = client_for(client, applicant).get(detail(allocation)).content.decode()
    change_form = text.split('id="changes-title"')[1]
    assert 'Extra GPU-hours <span class="muted">(for a top-up)</span>' in change_form
    assert 'New end date <span class="muted">(for an extension)</span>' in change_form
    assert "(optional)" not in change_form


def test_list_takes_the_same_queries_for_3_and_30_allocations(client, applicant, reference_data):
    organisation = make_organisation(owner=applicant)
    for number in range(3):
        make_allocation(organisation=organisation, account=f"a_{number}")
    client_for(client, applicant)
    client.get(reverse("allocations:list"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("allocations:list"))
    for number in range(3, 30):
        make_allocation(organisation=organisation, account=f"a_{number}", cluster="leonardo")
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("allocations:list"))
    assert len(many) == len(few)
    assert len(response.context["rows"]) == 30


def test_list_is_paginated_with_links_to_the_other_pages(
    client, applicant, reference_data, monkeypatch
):
    from allocations import views

    monkeypatch.setattr(views, "ALLOCATIONS_PER_PAGE", 2)
    organisation = make_organisation(owner=applicant)
    for number in range(3):
        make_allocation(organisation=organisation, account=f"a_{number}")
    client_for(client, applicant)

    first = client.get(reverse("allocations:list")).content.decode()
    second = client.get(reverse("allocations:list") + "?page=2").content.decode()

    assert "a_0" in first and "a_1" in first and "a_2" not in first
    assert 'href="?page=2" rel="next"' in first and "Page 1 of 2" in first
    assert "a_2" in second and "a_0" not in second
    assert 'href="?page=1" rel="prev"' in second and 'rel="next"' not in second


def test_a_single_page_shows_no_page_links(client, applicant, allocation):
    listing = client_for(client, applicant).get(reverse("allocations:list")).content.decode()
    assert "Page 1 of" not in listing and 'rel="next"' not in listing
