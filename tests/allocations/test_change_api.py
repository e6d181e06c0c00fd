"""Cluster users and change requests over the API: members see, owners act, call managers
decide; anybody else gets 404."""

from datetime import timedelta

import pytest

from allocations.models import ChangeRequest
from organisations.models import Membership
from tests.factories import make_allocation, make_organisation

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(applicant, reference_data):
    return make_allocation(organisation=make_organisation(owner=applicant))


def as_(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_owners_add_and_remove_cluster_users(api_client, allocation, applicant):
    url = f"/api/v1/allocations/{allocation.pk}/users/"
    client = as_(api_client, applicant)
    assert [u["username"] for u in client.get(url).json()] == ["alice", "bob"]
    assert client.post(url, {"username": "carol"}).status_code == 201
    assert client.post(url, {"username": "Bad Name"}).status_code == 400
    assert client.delete(f"{url}alice/").status_code == 204
    assert client.delete(f"{url}nobody/").status_code == 404
    assert sorted(allocation.users.values_list("username", flat=True)) == ["bob", "carol"]


def test_members_see_cluster_users_but_only_owners_change_them(
    api_client, allocation, outsider, other_applicant
):
    Membership.objects.create(
        organisation=allocation.organisation, user=outsider, role=Membership.Role.MEMBER
    )
    url = f"/api/v1/allocations/{allocation.pk}/users/"
    member = as_(api_client, outsider)
    assert member.get(url).status_code == 200
    assert member.post(url, {"username": "carol"}).status_code == 403
    stranger = as_(api_client, other_applicant)
    assert stranger.get(url).status_code == 404
    assert stranger.post(url, {"username": "carol"}).status_code == 404
    assert stranger.delete(f"{url}alice/").status_code == 404


def test_owner_asks_for_an_extension_and_the_call_manager_decides(
    api_client, allocation, applicant, call_manager, other_applicant
):
    new_end = (allocation.end + timedelta(days=30)).isoformat()
    made = as_(api_client, applicant).post(
        "/api/v1/change-requests/extensions/",
        {"allocation": allocation.pk, "new_end": new_end, "justification": "Training took longer."},
        format="json",
    )
    assert made.status_code == 201, made.json()
    change_id = made.json()["id"]
    assert api_client.post(f"/api/v1/change-requests/{change_id}/approve/").status_code == 403
    assert (
        as_(api_client, other_applicant).get(f"/api/v1/change-requests/{change_id}/").status_code
        == 404
    )
    manager = as_(api_client, call_manager)
    assert [c["id"] for c in manager.get("/api/v1/change-requests/").json()["results"]] == [
        change_id
    ]
    approved = manager.post(f"/api/v1/change-requests/{change_id}/approve/", {"reason": "ok"})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    allocation.refresh_from_db()
    assert allocation.end.isoformat() == new_end
    again = manager.post(f"/api/v1/change-requests/{change_id}/deny/", {"reason": "no"})
    assert again.status_code == 409


def test_a_denial_needs_a_reason(api_client, allocation, applicant, call_manager):
    change = ChangeRequest.objects.create(
        allocation=allocation,
        kind="top_up",
        extra_gpu_hours=10,
        justification="More",
        requested_by=applicant,
    )
    response = as_(api_client, call_manager).post(f"/api/v1/change-requests/{change.pk}/deny/", {})
    assert response.status_code == 400


def test_strangers_cannot_ask_for_changes_of_others_allocations(
    api_client, allocation, other_applicant
):
    response = as_(api_client, other_applicant).post(
        "/api/v1/change-requests/top-ups/",
        {"allocation": allocation.pk, "extra_gpu_hours": 5, "justification": "x"},
        format="json",
    )
    assert response.status_code == 404


def test_an_extension_must_end_later_than_the_allocation(api_client, allocation, applicant):
    response = as_(api_client, applicant).post(
        "/api/v1/change-requests/extensions/",
        {"allocation": allocation.pk, "new_end": allocation.end.isoformat(), "justification": "x"},
        format="json",
    )
    assert response.status_code == 409
