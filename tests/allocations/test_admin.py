"""Admin: allocation actions through the services, change request decisions, export page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from allocations.models import Allocation, ChangeRequest, SchedulerExport
from allocations.services import change_request_submit
from tests.conftest import client_for
from tests.factories import make_allocation

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:allocations_allocation_changelist"


@pytest.fixture
def allocation(reference_data):
    return make_allocation()


def act(client, url_name, action, objects, **extra):
    data = {"action": action, "_selected_action": [o.pk for o in objects], **extra}
    return client.post(reverse(url_name), data, follow=True)


def test_changelist_queries_do_not_grow_with_rows(
    client, operator, reference_data, django_assert_max_num_queries
):
    make_allocation(account="acct_0")
    client_for(client, operator)
    with CaptureQueriesContext(connection) as one_row:
        client.get(reverse(CHANGELIST))
    for number in range(1, 15):
        make_allocation(account=f"acct_{number}")

    with django_assert_max_num_queries(len(one_row)):
        response = client.get(reverse(CHANGELIST))

    assert response.content.decode().count("acct_") >= 15


def test_suspend_action_asks_for_a_reason_then_calls_the_service(client, operator, allocation):
    client_for(client, operator)

    confirm = act(client, CHANGELIST, "suspend", [allocation])
    assert b"Reason" in confirm.content
    missing = act(client, CHANGELIST, "suspend", [allocation], apply="1", reason="")
    assert b"Give a reason" in missing.content
    done = act(client, CHANGELIST, "suspend", [allocation], apply="1", reason="abuse report")

    allocation.refresh_from_db()
    assert allocation.state == Allocation.State.SUSPENDED
    event = allocation.events.last()
    assert (event.action, event.actor, event.reason) == ("suspended", operator, "abuse report")
    assert "1 done" in done.content.decode()


def test_illegal_action_reports_the_error_and_changes_nothing(client, operator, allocation):
    client_for(client, operator)

    response = act(client, CHANGELIST, "reactivate", [allocation], apply="1", reason="")

    assert "only a suspended allocation can be reactivated" in response.content.decode()
    allocation.refresh_from_db()
    assert allocation.state == Allocation.State.ACTIVE


def test_account_is_editable_only_before_the_first_export(client, operator, allocation):
    client_for(client, operator)
    url = reverse("admin:allocations_allocation_change", args=[allocation.pk])
    form = {"account": "renamed", "project": allocation.project, "model_name": "m-1",
            "users-TOTAL_FORMS": 0, "users-INITIAL_FORMS": 2, "events-TOTAL_FORMS": 0,
            "events-INITIAL_FORMS": 1}  # fmt: skip

    assert client.post(url, form).status_code == 302
    allocation.refresh_from_db()
    assert (allocation.account, allocation.model_name) == ("renamed", "m-1")
    assert allocation.events.filter(action="renamed", actor=operator).exists()

    Allocation.objects.filter(pk=allocation.pk).update(first_exported_at=timezone.now())
    page = client.get(url).content.decode()
    assert 'name="account"' not in page


def test_call_manager_approves_and_denies_change_requests(
    client, call_manager, applicant, allocation
):
    top_up = change_request_submit(
        allocation=allocation, kind="top_up", justification="more", requested_by=applicant,
        extra_gpu_hours=100,
    )  # fmt: skip
    extension = change_request_submit(
        allocation=allocation, kind="extension", justification="later", requested_by=applicant,
        new_end=allocation.end + timedelta(days=365),
    )  # fmt: skip
    client_for(client, call_manager)
    changelist = "admin:allocations_changerequest_changelist"

    act(client, changelist, "approve", [top_up], apply="1", reason="")
    act(client, changelist, "deny", [extension], apply="1", reason="no budget")

    top_up.refresh_from_db()
    extension.refresh_from_db()
    assert (top_up.state, extension.state) == ("approved", "denied")
    assert extension.decision_reason == "no budget"
    allocation.refresh_from_db()
    assert allocation.gpu_hours == 50_100


def test_operator_cannot_decide_change_requests(client, operator, applicant, allocation):
    change = change_request_submit(
        allocation=allocation, kind="top_up", justification="more", requested_by=applicant,
        extra_gpu_hours=100,
    )  # fmt: skip
    client_for(client, operator)

    act(client, "admin:allocations_changerequest_changelist", "approve", [change], apply="1")

    change.refresh_from_db()
    assert change.state == ChangeRequest.State.PENDING


def test_operator_produces_and_downloads_an_export(client, operator, allocation):
    from systems.models import Cluster

    client_for(client, operator)
    produce = reverse("admin:allocations_schedulerexport_produce")
    lumi = Cluster.objects.get(name="lumi")

    refused = client.post(produce, {"format": "slurm"})
    assert b"Choose the cluster" in refused.content
    response = client.post(produce, {"format": "slurm", "cluster": lumi.pk})

    export = SchedulerExport.objects.get()
    assert response.status_code == 302
    assert (export.created_by, export.cluster, export.format) == (operator, lumi, "slurm")
    download = client.get(reverse("admin:allocations_schedulerexport_download", args=[export.pk]))
    assert download.content.decode() == export.content
    assert download["X-Checksum-SHA256"] == export.checksum
    assert "attachment" in download["Content-Disposition"]
    history = client.get(reverse("admin:allocations_schedulerexport_changelist"))
    assert export.checksum[:12] in history.content.decode()


def test_export_history_shows_what_the_site_agent_applied_and_what_is_pending(
    client, operator, allocation
):
    from allocations.exports import export_mark_applied, export_pending
    from allocations.services import allocation_suspend
    from tests.factories import make_site_token

    token, _ = make_site_token(cluster="lumi", name="lumi admin node")
    pending = export_pending(cluster=allocation.cluster)
    applied = export_mark_applied(export_id=pending.pk, site_token=token, checksum=pending.checksum)
    allocation_suspend(allocation=allocation)
    export_pending(cluster=allocation.cluster)
    client_for(client, operator)

    history = client.get(reverse("admin:allocations_schedulerexport_changelist")).content.decode()
    detail = client.get(
        reverse("admin:allocations_schedulerexport_change", args=[applied.pk])
    ).content.decode()

    applied_at = timezone.localtime(applied.applied_at)
    assert f"{applied_at:%Y-%m-%d %H:%M} (lumi admin node)" in history
    assert "pending" in history
    assert "lumi admin node" in detail


def test_reviewer_cannot_produce_an_export(client, reviewer, reference_data):
    client_for(client, reviewer)

    response = client.get(reverse("admin:allocations_schedulerexport_produce"))

    assert response.status_code == 403


def test_applicant_has_no_admin(client, applicant, reference_data):
    client_for(client, applicant)

    response = client.get(reverse("admin:allocations_schedulerexport_produce"))

    assert response.status_code == 302 and "login" in response["Location"]


def test_admin_lists_show_hours_with_thousands_separators(
    client, call_manager, allocation, open_call
):
    change_request_submit(
        allocation=allocation,
        kind="top_up",
        justification="More.",
        requested_by=None,
        extra_gpu_hours=12_500,
    )
    client_for(client, call_manager)
    assert "50,000" in client.get(reverse(CHANGELIST)).content.decode()
    requests = client.get(reverse("admin:allocations_changerequest_changelist")).content.decode()
    assert "12,500" in requests and ">12500<" not in requests
    modes = client.get("/admin/systems/accessmode/").content.decode()
    assert "up to 50,000 GPU-hours" in modes and "[1, 2, 3]" not in modes
