import pytest

from tests.conftest import client_for


@pytest.mark.django_db
def test_applicant_has_no_admin_access(client, applicant):
    response = client_for(client, applicant).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_admin_shows_the_six_partitions_with_their_figures(client, operator, reference_data):
    page = client_for(client, operator).get("/admin/allocations/partition/").content.decode()
    for text in ("standard-g", "boost_usr_prod", "acc", "booster", "191.50", "989.00", "23,824"):
        assert text in page
    assert page.count('class="field-accelerator"') == 6


@pytest.mark.django_db
def test_operator_edits_partitions_but_not_calls(operator):
    assert operator.has_perm("allocations.change_partition")
    assert not operator.has_perm("allocations.change_call")


@pytest.mark.django_db
def test_call_manager_edits_calls_but_not_partitions(call_manager):
    assert call_manager.has_perm("allocations.change_call")
    assert not call_manager.has_perm("allocations.change_partition")


@pytest.mark.django_db
def test_only_governance_changes_the_threshold_policy(governance_officer, call_manager, operator):
    assert governance_officer.has_perm("allocations.add_thresholdpolicy")
    assert not call_manager.has_perm("allocations.change_thresholdpolicy")
    assert not operator.has_perm("allocations.change_thresholdpolicy")


@pytest.mark.django_db
def test_reviewer_cannot_change_calls(client, reviewer, open_call):
    response = client_for(client, reviewer).get(f"/admin/allocations/call/{open_call.pk}/change/")
    assert response.status_code in (200, 403)
    assert reviewer.has_perm("allocations.view_call")
    assert not reviewer.has_perm("allocations.change_call")
