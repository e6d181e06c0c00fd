"""The usage admin: import runs with every count of their summary, records by attribution."""

from datetime import date

import pytest

from allocations import services as allocation_services
from allocations.models import Allocation
from systems.models import Cluster
from tests.factories import make_organisation
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
