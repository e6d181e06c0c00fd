"""Which runs count against an allocation: its usage window, in the importer and in
usage_attribute, as dates, a call's grace and a site's time zone move it."""

import os
import time
from datetime import UTC, date, datetime

import pytest
from django.db import connection

from allocations import services as allocation_services
from allocations.models import Allocation, ChangeRequest
from allocations.transfer import allocations_import
from systems.models import Cluster, Site
from tests.factories import days, make_allocation, make_organisation
from tests.usage.sacct import sacct_line, sacct_text
from usage.importer import usage_import
from usage.models import UsageRecord
from usage.services import usage_attribute

pytestmark = pytest.mark.django_db

# Leonardo's site keeps Rome's time: 00:00 on 1 January 2026 there is 23:00 UTC the day before.


def import_lines(*lines: str):
    cluster = Cluster.objects.get(name="leonardo")
    return usage_import(cluster=cluster, lines=sacct_text(*lines).split("\n"), source="command")


@pytest.fixture
def january(reference_data):
    """An allocation for January 2026 on Leonardo, made through the service as the product
    makes one (its end lies in the past: brought over from another tool)."""
    return allocation_services.allocation_create(
        organisation=make_organisation(),
        project="January",
        partition=Cluster.objects.get(name="leonardo").partitions.get(),
        account="acme_llm",
        gpu_hours=1000,
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        state=Allocation.State.EXPIRED,
    )


def owner(job: str):
    return UsageRecord.objects.get(job_id=job).allocation


def test_the_window_runs_from_the_first_to_the_end_of_the_last_day_in_the_sites_zone(january):
    assert (january.usage_from, january.usage_until) == (
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 1, 31, 23, tzinfo=UTC),
    )


def test_only_runs_that_start_inside_the_window_count(january):
    result = import_lines(
        sacct_line("1", submit="2025-12-31T22:00:00", start="2025-12-31T23:59:59",
                   end="2026-01-01T00:59:59"),
        sacct_line("2", submit="2025-12-31T22:00:00", start="2026-01-01T00:00:00",
                   end="2026-01-01T01:00:00"),
        sacct_line("3", submit="2026-01-31T20:00:00", start="2026-01-31T23:59:59",
                   end="2026-02-01T00:59:59"),
        sacct_line("4", submit="2026-01-31T20:00:00", start="2026-02-01T00:00:00",
                   end="2026-02-01T01:00:00"),
        # pending: placed by when it was submitted
        sacct_line("5", state="PENDING", submit="2026-01-20T10:00:00", start="Unknown",
                   end="Unknown", elapsed=0),
        sacct_line("6", account="other", start="2026-01-10T10:00:00"),
    )  # fmt: skip

    assert result.summary == (
        "imported=3 updated=0 unchanged=0 steps_skipped=0 unmatched=1 rejected=0 "
        "outside_window=2 no_gpu_field=0"
    )
    assert [owner(job) for job in "123456"] == [None, january, january, None, january, None]


def test_a_run_that_straddles_the_end_counts_whole_against_the_allocation_it_started_in(january):
    import_lines(
        sacct_line("1", submit="2026-01-31T20:00:00", start="2026-01-31T22:00:00",
                   end="2026-02-01T04:00:00", elapsed=6 * 3600)
    )  # fmt: skip

    record = UsageRecord.objects.get()
    assert (record.allocation, record.gpu_seconds) == (january, 4 * 6 * 3600)


def test_runs_before_a_later_grant_never_count_against_it(reference_data):
    # usage of an account in 2025, when no grant had the name
    make_allocation(cluster="lumi", account="placeholder")  # some other allocation exists
    import_lines(sacct_line("1", start="2025-06-01T10:00:00", submit="2025-06-01T09:00:00",
                            end="2025-06-01T11:00:00"))  # fmt: skip
    assert owner("1") is None

    later = make_allocation(cluster="leonardo", account="acme_llm", start=days(-30))

    assert owner("1") is None
    assert usage_attribute(cluster=later.cluster) == 0
    again = import_lines(sacct_line("1", start="2025-06-01T10:00:00", submit="2025-06-01T09:00:00",
                                    end="2025-06-01T11:00:00"))  # fmt: skip
    assert (again.outside_window, again.unmatched, again.unchanged) == (1, 0, 0)


def test_an_extension_takes_in_the_runs_its_new_days_hold(january, operator):
    import_lines(sacct_line("1", submit="2026-02-10T09:00:00", start="2026-02-10T10:00:00",
                            end="2026-02-10T11:00:00"))  # fmt: skip
    assert owner("1") is None
    Allocation.objects.filter(pk=january.pk).update(state=Allocation.State.ACTIVE)
    change = ChangeRequest.objects.create(
        allocation=january,
        kind=ChangeRequest.Kind.EXTENSION,
        new_end=date(2026, 2, 28),
        justification="More time.",
        requested_by=operator,
    )

    allocation_services.change_request_approve(change_request=change, actor=operator)

    assert owner("1") == january


def test_a_shorter_window_lets_go_of_the_runs_it_no_longer_holds(january):
    import_lines(sacct_line("1", submit="2026-01-20T09:00:00", start="2026-01-20T10:00:00",
                            end="2026-01-20T11:00:00"))  # fmt: skip
    assert owner("1") == january
    entry = {
        "organisation": {
            "name": january.organisation.legal_name,
            "country": january.organisation.country,
            "registration_id": january.organisation.registration_id,
            "controlled_by": None,
        },
        "project": "January",
        "cluster": "leonardo",
        "partition": january.partition.name,
        "account": "acme_llm",
        "gpu_hours": 1000,
        "start": "2026-01-01",
        "end": "2026-01-15",
        "state": "expired",
        "users": [],
    }

    assert allocations_import({"allocations": [entry]}).updated == 1

    assert owner("1") is None


def test_the_calls_grace_lets_runs_queued_before_the_end_count(reference_data, open_call):
    mode = open_call.access_modes.first()
    allocation = make_allocation(cluster="leonardo", account="acme_llm", access_mode=mode,
                                 start=date(2026, 1, 1))  # fmt: skip
    Allocation.objects.filter(pk=allocation.pk).update(end=date(2026, 1, 31))
    allocation.refresh_from_db()
    allocation.save(update_fields=["end"])
    import_lines(sacct_line("1", submit="2026-01-31T20:00:00", start="2026-02-02T10:00:00",
                            end="2026-02-02T11:00:00"))  # fmt: skip
    assert owner("1") is None

    open_call.usage_grace_days = 3
    open_call.save()

    allocation.refresh_from_db()
    assert allocation.usage_until == datetime(2026, 2, 3, 23, tzinfo=UTC)
    assert owner("1") == allocation


def test_a_site_moving_its_time_zone_moves_the_windows(january):
    site = Site.objects.get(clusters__name="leonardo")
    site.time_zone = "UTC"
    site.save()

    january.refresh_from_db()
    assert january.usage_from == datetime(2026, 1, 1, tzinfo=UTC)


def test_records_made_before_their_allocation_are_attributed_by_the_window(reference_data):
    import_lines(
        sacct_line("1", submit="2026-01-05T08:00:00", start="2026-01-05T09:00:00"),
        sacct_line("2", submit="2025-01-05T08:00:00", start="2025-01-05T09:00:00",
                   end="2025-01-05T11:00:00"),
    )  # fmt: skip
    # made without the service, so without the signal: the next import attributes
    allocation = Allocation.objects.create(
        organisation=make_organisation(),
        project="x",
        cluster=Cluster.objects.get(name="leonardo"),
        partition=Cluster.objects.get(name="leonardo").partitions.get(),
        account="ACME_LLM",
        gpu_hours=10,
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        state=Allocation.State.ACTIVE,
    )

    assert usage_attribute(cluster=allocation.cluster) == 1
    assert (owner("1"), owner("2")) == (allocation, None)


# --- import runs whose process is gone ---------------------------------------------------------


def test_a_run_left_running_by_a_process_that_is_gone_is_marked_interrupted(reference_data):
    import subprocess
    import sys

    from core.locks import HOST
    from usage.models import UsageImport
    from usage.services import usage_imports_sweep

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    cluster = Cluster.objects.get(name="leonardo")
    gone = UsageImport.objects.create(
        cluster=cluster, source="command", host=HOST, pid=int(ended.stdout), status="running"
    )
    # this very process, but not importing it: it ended here too
    stale = UsageImport.objects.create(
        cluster=cluster, source="command", host=HOST, pid=os.getpid(), status="running"
    )

    assert sorted(usage_imports_sweep()) == [gone.pk, stale.pk]

    gone.refresh_from_db()
    assert gone.status == "interrupted" and gone.finished_at is not None
    assert "importing the same input again completes it" in gone.error


def test_a_run_whose_process_lives_stays_running(reference_data):
    from core.locks import HOST
    from usage.models import UsageImport
    from usage.services import usage_imports_sweep

    # PostgreSQL asks the run's session lock, which nobody holds here: only on SQLite is a
    # live pid on this machine the proof of life
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL a run is alive while its session holds its lock")
    UsageImport.objects.create(
        cluster=Cluster.objects.get(name="leonardo"), source="command", host=HOST,
        pid=os.getppid(), status="running",
    )  # fmt: skip

    assert usage_imports_sweep() == []


def test_on_postgresql_a_run_lives_while_a_session_holds_it(reference_data):
    from django.db import connections

    from core.locks import advisory_key
    from usage.models import UsageImport
    from usage.services import usage_imports_sweep

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's session locks")
    run = UsageImport.objects.create(
        cluster=Cluster.objects.get(name="leonardo"), source="command", host="elsewhere",
        pid=1, status="running",
    )  # fmt: skip
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s)", [advisory_key(f"hpcgate:usage-import:{run.pk}")]
            )
        assert usage_imports_sweep() == []
    finally:
        holder.close()  # the importing process ends

    # the server lets go of the session's locks as it ends it, a moment after the client left
    deadline = time.monotonic() + 10
    while not (swept := usage_imports_sweep()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert swept == [run.pk]
