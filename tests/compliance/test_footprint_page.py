"""The governance page of concurrent footprints: each group's peak, and day by day."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation
from tests.compliance.factories import allocation, job, midnight, organisation
from tests.conftest import client_for


@pytest.fixture
def two_groups(reference_data):
    parent = organisation("DE-PARENT-1")
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1")
    other = organisation("ES-OTHER-3")
    leo = allocation(parent, "leonardo", "parent_llm")
    mn5 = allocation(child, "marenostrum5", "kid_llm")
    vega = allocation(other, "vega", "other_llm")
    day = midnight(3)
    job(leo, 300, day, day + timedelta(hours=30))
    job(mn5, 200, day + timedelta(hours=2), day + timedelta(hours=5))
    job(vega, 8, day, day + timedelta(hours=1))
    return day


def test_governance_sees_each_group_peak_and_one_group_by_day(
    client, two_groups, governance_officer
):
    c = client_for(client, governance_officer)
    page = c.get("/governance/footprint/").content.decode()
    text = " ".join(page.split())
    assert text.index("DE-PARENT-1") < text.index("ES-OTHER-3")  # largest first
    assert '<td class="num">500</td>' in page  # 300 + 200 GPUs at once
    day_page = c.get("/governance/footprint/?group=DE-PARENT-1").content.decode()
    assert "DE-PARENT-1, day by day" in day_page
    assert two_groups.date().isoformat() in day_page
    assert (two_groups + timedelta(days=1)).date().isoformat() in day_page


def test_the_page_takes_as_many_queries_for_many_jobs(client, two_groups, governance_officer):
    c = client_for(client, governance_officer)
    c.get("/governance/footprint/")
    with CaptureQueriesContext(connection) as few:
        c.get("/governance/footprint/")
    leo = Allocation.objects.get(account="parent_llm")
    for hour in range(20):
        start = two_groups + timedelta(hours=hour)
        job(leo, 4, start, start + timedelta(hours=1))
    with CaptureQueriesContext(connection) as many:
        c.get("/governance/footprint/")
    assert len(many) == len(few)


@pytest.mark.parametrize("who", ["reviewer", "applicant"])
def test_the_footprint_page_is_for_staff_who_handle_alerts(client, two_groups, request, who):
    person = request.getfixturevalue(who)
    response = client_for(client, person).get("/governance/footprint/")
    assert response.status_code in (302, 403)
