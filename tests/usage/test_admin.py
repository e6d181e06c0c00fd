"""The usage admin: import runs with every count of their summary, records by attribution."""

import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations import services as allocation_services
from allocations.models import Allocation
from core.pagination import EstimatedCountPaginator
from systems.models import Cluster
from tests.factories import make_allocation, make_organisation, make_usage_record
from tests.usage.sacct import sacct_line, sacct_text
from usage.importer import usage_import
from usage.models import UsageImport

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(reference_data):
    leonardo = Cluster.objects.get(name="leonardo")
    allocation_services.allocation_create(
        organisation=make_organisation(),
        project="January",
        partition=leonardo.partitions.get(),
        account="acme_llm",
        gpu_hours=1000,
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        state=Allocation.State.EXPIRED,
    )
    text = sacct_text(
        sacct_line("101", start="2026-01-05T09:00:00"),
        sacct_line("202", submit="2026-03-01T08:00:00", start="2026-03-01T09:00:00",
                   end="2026-03-01T11:00:00"),
        sacct_line("303", account="someone_else"),
    )  # fmt: skip
    return usage_import(cluster=leonardo, lines=text.split("\n"), source="command")


def test_import_runs_show_runs_outside_the_window_and_informational_counts(
    client, operator, imported
):
    client.force_login(operator)

    listing = client.get("/admin/usage/usageimport/").content.decode()
    detail = client.get(f"/admin/usage/usageimport/{imported.pk}/change/").content.decode()

    assert "outside window" in listing.lower()
    assert "no gpu field" in listing.lower()
    assert "outside_window=1 no_gpu_field=0" in detail
    assert UsageImport.objects.get().outside_window == 1


@pytest.mark.parametrize(
    ("attribution", "shown", "hidden"),
    [
        ("attributed", "101", ["202", "303"]),
        ("outside_window", "202", ["101", "303"]),
        ("unmatched", "303", ["101", "202"]),
    ],
)
def test_records_are_filtered_by_attribution(
    client, operator, imported, attribution, shown, hidden
):
    client.force_login(operator)

    page = client.get(f"/admin/usage/usagerecord/?attribution={attribution}").content.decode()

    assert f">{shown}<" in page
    assert all(f">{job}<" not in page for job in hidden)


def _records(allocation, count: int, **fields) -> None:
    for _ in range(count):
        make_usage_record(allocation=allocation, **fields)


def test_record_list_queries_do_not_grow_with_records(client, operator, reference_data):
    allocation = make_allocation(cluster="leonardo")
    _records(allocation, 3)
    client.force_login(operator)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/usage/usagerecord/").status_code == 200
    _records(allocation, 27)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/admin/usage/usagerecord/").content.decode()
    assert len(many) == len(few)
    assert "30 usage records" in page
    # one count of what is listed, never a second of the whole table, nor a DISTINCT
    assert not any("DISTINCT" in q["sql"] for q in many.captured_queries)
    assert sum("COUNT(" in q["sql"] for q in many.captured_queries) == 1


def test_record_list_shows_the_newest_imported_first(client, operator, reference_data):
    allocation = make_allocation(cluster="leonardo")
    first = make_usage_record(allocation=allocation, job_id="4001")
    last = make_usage_record(allocation=allocation, job_id="4002")
    client.force_login(operator)
    page = client.get("/admin/usage/usagerecord/").content.decode()
    assert page.index(f">{last.job_id}<") < page.index(f">{first.job_id}<")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics"
)
def test_a_large_table_is_counted_from_its_statistics_unless_filtered(
    client, operator, reference_data, monkeypatch
):
    allocation = make_allocation(cluster="leonardo")
    _records(allocation, 5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_usagerecord")
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_from", 1)
    client.force_login(operator)
    with CaptureQueriesContext(connection) as unfiltered:
        page = client.get("/admin/usage/usagerecord/").content.decode()
    assert "about 5 usage records" in page
    assert not any("COUNT(" in q["sql"] for q in unfiltered.captured_queries)
    filtered = client.get(f"/admin/usage/usagerecord/?cluster__id__exact={allocation.cluster_id}")
    assert "5 usage records" in filtered.content.decode()
    assert "about" not in filtered.content.decode()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the other databases count exactly")
def test_other_databases_count_the_list_exactly(client, operator, reference_data, monkeypatch):
    _records(make_allocation(cluster="leonardo"), 5)
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_from", 1)
    client.force_login(operator)
    page = client.get("/admin/usage/usagerecord/").content.decode()
    assert "5 usage records" in page
    assert "about" not in page


def test_records_are_filtered_by_state_from_a_fixed_list(client, operator, reference_data):
    allocation = make_allocation(cluster="leonardo")
    make_usage_record(allocation=allocation, job_id="5001", state="COMPLETED")
    make_usage_record(allocation=allocation, job_id="5002", state="TIMEOUT")
    client.force_login(operator)
    everything = client.get("/admin/usage/usagerecord/").content.decode()
    assert "?state=OUT_OF_MEMORY" in everything  # offered although no record has it
    page = client.get("/admin/usage/usagerecord/?state=TIMEOUT").content.decode()
    assert ">5002<" in page and ">5001<" not in page


def test_a_job_number_finds_that_jobs_runs_on_every_cluster_from_the_key_index(
    client, operator, reference_data
):
    leonardo = make_allocation(cluster="leonardo")
    lumi = make_allocation(cluster="lumi")
    # a requeued job (two runs), the same number on another cluster, a pending run without a
    # submit time, and records that only contain the number
    make_usage_record(allocation=leonardo, job_key="4012345@2026-01-05T08:00:00Z", job_id="4012345")
    make_usage_record(allocation=leonardo, job_key="4012345@2026-01-05T10:00:00Z", job_id="4012345")
    make_usage_record(allocation=lumi, job_key="4012345@2026-02-01T08:00:00Z", job_id="4012345")
    make_usage_record(allocation=lumi, job_key="77", job_id="77")
    make_usage_record(
        allocation=leonardo, job_key="40123456@2026-01-05T08:00:00Z", job_id="40123456"
    )
    make_usage_record(allocation=leonardo, job_id="9", job_name="sweep-4012345")
    client.force_login(operator)

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/usage/usagerecord/", {"q": " 4012345 "}).content.decode()
    assert _listed(page) == 3 and page.count(">4012345<") == 3
    assert "A job number alone" in page  # what the search box does, under it
    assert not any("LIKE" in query["sql"] for query in queries.captured_queries)
    assert _listed(client.get("/admin/usage/usagerecord/", {"q": "77"}).content.decode()) == 1
    # any other text searches the fields, job names included
    page = client.get("/admin/usage/usagerecord/", {"q": "sweep-40"}).content.decode()
    assert _listed(page) == 1 and ">9<" in page


def _listed(page: str) -> int:
    """How many records the list says it holds."""
    return int(re.search(r"(\d+) usage records?\b", page).group(1))
