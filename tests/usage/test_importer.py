"""import_usage and the usage_import service: every GPU-second counted exactly once."""

import json
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation
from systems.models import Cluster, Partition
from tests.factories import days, make_allocation, make_cluster, make_organisation
from tests.usage.sacct import (
    FOX_FIELDS,
    SINCE,
    XDMOD_FIELDS,
    import_text,
    run_command,
    sacct_line,
    sacct_text,
    sample,
    summary,
)
from usage.accounting import parse_sacct
from usage.importer import DATA_FIELDS, supersedes, usage_import
from usage.importer.batches import _arrow_batches
from usage.importer.rows import _Places
from usage.importer.writers import _copy_data, _PostgresWriter
from usage.models import UsageImport, UsageRecord
from usage.services import usage_attribute

pytestmark = pytest.mark.django_db


@pytest.fixture
def fox(reference_data):
    cluster = make_cluster()
    for account in ("ec313", "ec35", "ec395"):
        make_allocation(start=SINCE, cluster=cluster, account=account)
    return cluster


@pytest.fixture
def leonardo(reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    return Cluster.objects.get(name="leonardo")


@pytest.fixture(params=["stored range joined", "each run looked up"])
def merge_plan(request, monkeypatch):
    """On PostgreSQL, both ways a batch meets the stored runs of its key range: the range read
    whole and joined (few stored runs in it), or each run looked up (many)."""
    if request.param == "each run looked up":
        if connection.vendor != "postgresql":
            pytest.skip("one way to meet the stored runs off PostgreSQL")
        from usage.importer.writers import _PostgresWriter

        monkeypatch.setattr(_PostgresWriter, "JOIN_FACTOR", 0)
    return request.param


def total_gpu_seconds(cluster) -> int:
    return UsageRecord.objects.filter(cluster=cluster).aggregate(s=Sum("gpu_seconds"))["s"] or 0


def import_sample(name: str, *args: str, cluster: str = "fox") -> dict[str, int]:
    out, _ = run_command("import_usage", "--cluster", cluster, *args, str(sample(name)))
    return summary(out)


# --- the real samples ------------------------------------------------------------------------


def test_fox_sample_counts_allocation_lines_once_and_skips_steps(fox):
    # 96 lines: 29 job allocations and 67 .batch/.extern/.0 steps. Accounts ec313 (12 jobs),
    # ec35 (3) and ec395 (2) have allocations; ec85 (7), ec201 (3) and ec30 (2) do not.
    counts = import_sample("sonar-fox-sacct.txt", "--fields", FOX_FIELDS)
    assert counts == {
        "imported": 17,
        "updated": 0,
        "unchanged": 0,
        "steps_skipped": 67,
        "unmatched": 12,
        "rejected": 0,
        "outside_window": 0,
        "no_gpu_field": 0,
    }
    assert UsageRecord.objects.filter(cluster=fox).count() == 29


def test_typed_gres_entry_is_not_added_to_the_gpu_total(fox):
    import_sample("sonar-fox-sacct.txt", "--fields", FOX_FIELDS)
    # AllocTRES billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1,mem=32G,node=1 is one GPU
    record = UsageRecord.objects.get(cluster=fox, job_id="974804")
    assert (record.gpus, record.elapsed_seconds, record.gpu_seconds) == (1, 206, 206)


def test_cancelled_by_uid_is_state_cancelled(reference_data):
    make_cluster()
    import_sample("xdmod-slurm-accounting-logs.log", "--fields", XDMOD_FIELDS)
    assert UsageRecord.objects.get(job_id="4107166").state == "CANCELLED"


@pytest.mark.usefixtures("merge_plan")
def test_reimporting_the_same_sample_changes_nothing(fox):
    import_sample("sonar-fox-sacct.txt", "--fields", FOX_FIELDS)
    before = total_gpu_seconds(fox)
    counts = import_sample("sonar-fox-sacct.txt", "--fields", FOX_FIELDS)
    assert counts == {
        "imported": 0,
        "updated": 0,
        "unchanged": 17,
        "steps_skipped": 67,
        "unmatched": 12,
        "rejected": 0,
        "outside_window": 0,
        "no_gpu_field": 0,
    }
    assert total_gpu_seconds(fox) == before
    assert UsageRecord.objects.filter(cluster=fox).count() == 29


def test_xdmod_samples_import_with_their_field_list(reference_data):
    cluster = make_cluster()
    make_allocation(start=SINCE, cluster=cluster, account="anonacct")
    counts = import_sample("xdmod-slurm-accounting-logs.log", "--fields", XDMOD_FIELDS)
    assert counts["imported"] == 1 and counts["unmatched"] == 3 and counts["rejected"] == 0
    # Elapsed as D-HH:MM:SS: 3-00:00:00 on 32 nodes with no GPU is 0 GPU-seconds
    timeout = UsageRecord.objects.get(job_id="4103947")
    assert (timeout.elapsed_seconds, timeout.gpu_seconds) == (3 * 86400, 0)
    # the GPU-only line: gres/gpu=2 for 00:00:00
    assert UsageRecord.objects.get(job_id="5692623").gpus == 2


def test_running_and_pending_samples(reference_data):
    make_cluster()
    counts = import_sample("xdmod-slurm-non-ended-job-state.log", "--fields", XDMOD_FIELDS)
    assert counts["unmatched"] == 2 and counts["rejected"] == 0
    running = UsageRecord.objects.get(job_id="3451067")
    assert (
        running.running
        and running.end is None
        and running.elapsed_seconds == 22 * 3600 + 32 * 60 + 22
    )
    pending = UsageRecord.objects.get(job_id="3483276")
    assert pending.start is None and pending.gpu_seconds == 0 and pending.elapsed_seconds == 0


def test_unknown_state_names_are_kept_not_rejected(reference_data):
    make_cluster()
    counts = import_sample("xdmod-slurm-unknown-job-state.log", "--fields", XDMOD_FIELDS)
    assert counts["rejected"] == 0
    assert set(UsageRecord.objects.values_list("state", flat=True)) == {"FOO", "BAR"}


def test_multibyte_job_names_survive(reference_data):
    make_cluster()
    import_sample("xdmod-slurm-utf8-multibyte-chars.log", "--fields", XDMOD_FIELDS)
    assert UsageRecord.objects.get().job_name == "aàb"


def test_pbs_sample(reference_data):
    cluster = make_cluster()
    make_allocation(start=SINCE, cluster=cluster, account="caste")
    counts = import_sample("xdmod-pbs-accounting-logs.log", "--format", "pbs")
    # nine E records; job 6 is written twice (with and without the server suffix): one run
    assert counts == {
        "imported": 3,
        "updated": 0,
        "unchanged": 0,
        "steps_skipped": 0,
        "unmatched": 6,
        "rejected": 0,
        "outside_window": 0,
        "no_gpu_field": 0,
    }
    assert UsageRecord.objects.count() == 8
    gpu_job = UsageRecord.objects.get(job_id="3073070")
    assert gpu_job.gpus == 4  # Resource_List.ngpus
    assert gpu_job.elapsed_seconds == 10 * 3600 + 66  # resources_used.walltime 10:01:06
    again = import_sample("xdmod-pbs-accounting-logs.log", "--format", "pbs")
    assert again["imported"] == 0 and again["unchanged"] == 3 and again["unmatched"] == 6


# --- re-imports, running jobs, requeues ----------------------------------------------------


@pytest.mark.usefixtures("merge_plan")
def test_running_then_completed_updates_the_record(tmp_path, leonardo):
    running = sacct_line("100", state="RUNNING", end="Unknown", elapsed=3600)
    assert summary(import_text(tmp_path, sacct_text(running))[0])["imported"] == 1
    done = sacct_line("100", elapsed=7200)
    counts = summary(import_text(tmp_path, sacct_text(done))[0])
    assert (counts["imported"], counts["updated"]) == (0, 1)
    record = UsageRecord.objects.get()
    assert (record.running, record.gpu_seconds, record.state) == (False, 4 * 7200, "COMPLETED")


@pytest.mark.usefixtures("merge_plan")
def test_older_running_pull_after_completed_changes_nothing(tmp_path, leonardo):
    import_text(tmp_path, sacct_text(sacct_line("100", elapsed=7200)))
    stale = sacct_line("100", state="RUNNING", end="Unknown", elapsed=3600)
    counts = summary(import_text(tmp_path, sacct_text(stale))[0])
    assert (counts["updated"], counts["unchanged"]) == (0, 1)
    assert total_gpu_seconds(leonardo) == 4 * 7200
    assert not UsageRecord.objects.get().running


def test_older_running_pull_after_newer_running_pull_changes_nothing(tmp_path, leonardo):
    import_text(tmp_path, sacct_text(sacct_line("7", state="RUNNING", end="Unknown", elapsed=900)))
    stale = sacct_line("7", state="RUNNING", end="Unknown", elapsed=300)
    assert summary(import_text(tmp_path, sacct_text(stale))[0])["unchanged"] == 1
    assert total_gpu_seconds(leonardo) == 4 * 900


@pytest.mark.usefixtures("merge_plan")
def test_pending_job_has_zero_usage_and_is_replaced_when_it_runs(tmp_path, leonardo):
    pending = sacct_line("5", state="PENDING", start="Unknown", end="Unknown", elapsed=0)
    import_text(tmp_path, sacct_text(pending))
    assert UsageRecord.objects.get().gpu_seconds == 0
    started = sacct_line("5", state="RUNNING", end="Unknown", elapsed=0)
    assert summary(import_text(tmp_path, sacct_text(started))[0])["updated"] == 1
    # and a stale pending pull does not undo the start
    assert summary(import_text(tmp_path, sacct_text(pending))[0])["unchanged"] == 1
    assert UsageRecord.objects.get().start is not None


def test_requeued_runs_are_separate_records(tmp_path, leonardo):
    first = sacct_line(
        "300",
        state="REQUEUED",
        submit="2026-01-05T08:00:00",
        start="2026-01-05T09:00:00",
        end="2026-01-05T10:00:00",
        elapsed=3600,
    )
    second = sacct_line(
        "300",
        submit="2026-01-05T10:00:05",
        start="2026-01-05T10:05:00",
        end="2026-01-05T12:05:00",
        elapsed=7200,
    )
    counts = summary(import_text(tmp_path, sacct_text(first, second))[0])
    assert counts["imported"] == 2
    assert UsageRecord.objects.filter(job_id="300").count() == 2
    assert total_gpu_seconds(leonardo) == 4 * (3600 + 7200)


def test_arrays_and_het_jobs_are_separate_records_and_their_steps_skipped(tmp_path, leonardo):
    text = sacct_text(
        sacct_line("400_1", raw="401"),
        sacct_line("400_1.batch", raw="401.batch"),
        sacct_line("400_2", raw="402"),
        sacct_line("500+0", raw="500"),
        sacct_line("500+1", raw="501"),
        sacct_line("500+1.0", raw="501.0"),
    )
    counts = summary(import_text(tmp_path, text)[0])
    assert (counts["imported"], counts["steps_skipped"]) == (4, 2)
    assert sorted(UsageRecord.objects.values_list("job_id", flat=True)) == [
        "400_1",
        "400_2",
        "500+0",
        "500+1",
    ]


@pytest.mark.usefixtures("merge_plan")
def test_overlapping_windows_count_each_job_once(tmp_path, leonardo):
    monday = sacct_text(
        sacct_line("1"), sacct_line("2", state="RUNNING", end="Unknown", elapsed=60)
    )
    tuesday = sacct_text(sacct_line("2", elapsed=7200), sacct_line("3"))
    import_text(tmp_path, monday)
    counts = summary(import_text(tmp_path, tuesday)[0])
    assert (counts["imported"], counts["updated"], counts["unchanged"]) == (1, 1, 0)
    assert total_gpu_seconds(leonardo) == 3 * 4 * 7200


def test_a_batch_meets_the_stored_runs_of_its_key_range_joined_or_one_by_one(leonardo):
    if connection.vendor != "postgresql":
        pytest.skip("the ORM path fetches the batch's runs by key")
    every = sacct_text(*(sacct_line(str(n)) for n in range(1, 51))).split("\n")
    usage_import(cluster=leonardo, lines=every, source="command")
    # keys 1@... and 50@... span all fifty stored runs: too many to read for two lines
    ends = sacct_text(sacct_line("1", elapsed=7000), sacct_line("50")).split("\n")
    with CaptureQueriesContext(connection) as queries:
        run = usage_import(cluster=leonardo, lines=ends, source="command")
    assert (run.imported, run.updated, run.unchanged) == (0, 1, 1)
    merges = [query["sql"] for query in queries if "WITH src AS" in query["sql"]]
    assert len(merges) == 1 and "LEFT JOIN LATERAL" in merges[0]
    # the whole pull again: its range holds its own runs only, read at once
    with CaptureQueriesContext(connection) as queries:
        run = usage_import(cluster=leonardo, lines=every, source="command")
    assert (run.imported, run.updated, run.unchanged) == (0, 1, 49)
    merges = [query["sql"] for query in queries if "WITH src AS" in query["sql"]]
    assert len(merges) == 1 and "LATERAL" not in merges[0]
    assert UsageRecord.objects.get(job_id="1").elapsed_seconds == 7200


def test_each_stored_run_names_the_import_run_that_wrote_it_and_when(tmp_path, leonardo):
    path = tmp_path / "pull.txt"

    def imported(*lines: str) -> UsageImport:
        path.write_text(sacct_text(*lines), encoding="utf-8")
        with path.open(encoding="utf-8", newline="") as handle:  # read in columns on PostgreSQL
            return usage_import(cluster=leonardo, lines=handle, source="command")

    first = imported(sacct_line("1"), sacct_line("2", account="newco"))
    second = imported(sacct_line("1", elapsed=7000), sacct_line("3"))

    written = {record.job_id: record for record in UsageRecord.objects.all()}
    assert {job: record.import_run_id for job, record in written.items()} == {
        "1": second.pk,
        "2": first.pk,
        "3": second.pk,
    }
    for record in written.values():
        run = first if record.import_run_id == first.pk else second
        assert run.started_at <= record.updated_at <= run.finished_at
    assert written["2"].partition.name == "boost_usr_prod"


@pytest.mark.usefixtures("merge_plan")
def test_a_job_twice_in_one_input_is_counted_as_if_imported_twice(tmp_path, leonardo):
    text = sacct_text(
        sacct_line("9", state="RUNNING", end="Unknown", elapsed=60),
        sacct_line("9", elapsed=7200),
        sacct_line("9", state="RUNNING", end="Unknown", elapsed=60),
        sacct_line("9", elapsed=7200),
    )
    counts = summary(import_text(tmp_path, text)[0])
    assert (counts["imported"], counts["updated"], counts["unchanged"]) == (1, 1, 2)
    assert total_gpu_seconds(leonardo) == 4 * 7200


@pytest.mark.usefixtures("merge_plan")
def test_counts_do_not_depend_on_the_batch_size(leonardo):
    lines = [sacct_line(str(n), state="RUNNING", end="Unknown", elapsed=n) for n in range(1, 40)]
    text = sacct_text(*lines, sacct_line("3", elapsed=99), sacct_line("4"), "garbage|line")
    small = usage_import(cluster=leonardo, lines=text.splitlines(), source="command", batch_size=7)
    UsageRecord.objects.all().delete()
    large = usage_import(cluster=leonardo, lines=text.splitlines(), source="command")
    assert small.summary == large.summary
    assert large.summary == (
        "imported=39 updated=2 unchanged=0 steps_skipped=0 "
        "unmatched=0 rejected=1 outside_window=0 no_gpu_field=0"
    )


# --- unmatched accounts ----------------------------------------------------------------------


def test_unmatched_usage_is_kept_and_attributed_once_the_allocation_exists(tmp_path, leonardo):
    counts = summary(import_text(tmp_path, sacct_text(sacct_line("1", account="newco")))[0])
    assert counts["unmatched"] == 1
    record = UsageRecord.objects.get()
    assert record.allocation is None
    # made another way than allocation_create (the ORM, a migration of data): nothing attributed
    # its usage yet
    allocation = Allocation.objects.create(
        organisation=make_organisation(),
        project="Project newco",
        cluster=leonardo,
        partition=leonardo.partitions.get(),
        account="newco",
        gpu_hours=1000,
        start=SINCE,
        end=days(90),
        state=Allocation.State.ACTIVE,
    )
    # the next import (of anything) or report attributes it
    assert usage_attribute(cluster=leonardo) == 1
    record.refresh_from_db()
    assert record.allocation == allocation
    again = summary(import_text(tmp_path, sacct_text(sacct_line("1", account="newco")))[0])
    assert (again["unmatched"], again["unchanged"]) == (0, 1)


def test_slurms_lower_case_account_matches_an_allocation_granted_in_upper_case(tmp_path, leonardo):
    allocation = make_allocation(start=SINCE, cluster="leonardo", account="SCSG0001")
    # sacct prints what slurmdbd stores: the name in lower case
    counts = summary(import_text(tmp_path, sacct_text(sacct_line("1", account="scsg0001")))[0])
    assert (counts["imported"], counts["unmatched"]) == (1, 0)
    record = UsageRecord.objects.get()
    assert (record.account, record.allocation) == ("scsg0001", allocation)


def test_pbs_account_in_upper_case_and_hyphenated_names_match(tmp_path, leonardo):
    upper = make_allocation(start=SINCE, cluster="leonardo", account="SCSG0001")
    hyphen = make_allocation(start=SINCE, cluster="leonardo", account="ec110-guest")
    log = "".join(
        f"01/05/2026 11:00:00;E;{job}.pbs01;user=alice group=ai {attribute} queue=boost_usr_prod"
        f" qtime=1767596400 start=1767603600 end=1767610800 Resource_List.ngpus=4"
        f" resources_used.walltime=02:00:00 Exit_status=0\n"
        for job, attribute in [(1, "account=SCSG0001"), (2, 'project="ec110-guest"')]
    )
    counts = summary(import_text(tmp_path, log, "--format", "pbs")[0])
    assert (counts["imported"], counts["unmatched"]) == (2, 0)
    owners = dict(UsageRecord.objects.values_list("job_id", "allocation"))
    assert owners == {"1": upper.pk, "2": hyphen.pk}


def test_usage_imported_first_is_attributed_to_an_allocation_in_another_case(tmp_path, leonardo):
    import_text(tmp_path, sacct_text(sacct_line("1", account="scsg0001")))
    assert UsageRecord.objects.get().allocation is None
    allocation = make_allocation(start=SINCE, cluster="leonardo", account="SCSG0001")
    assert UsageRecord.objects.get().allocation == allocation


def test_an_allocation_on_another_cluster_does_not_match(tmp_path, leonardo):
    make_allocation(start=SINCE, cluster="lumi", account="lumi_only")
    counts = summary(import_text(tmp_path, sacct_text(sacct_line("1", account="lumi_only")))[0])
    assert counts["unmatched"] == 1
    usage_attribute()
    assert UsageRecord.objects.get().allocation is None


# --- malformed input ------------------------------------------------------------------------


def test_rejected_lines_are_reported_with_their_numbers(tmp_path, leonardo):
    text = sacct_text(
        sacct_line("1"),
        sacct_line("2", start="yesterday"),
        "only|three|fields",
        sacct_line("3", tres="gres/gpu=lots"),
    )
    out, err = import_text(tmp_path, text)
    assert summary(out) == {
        "imported": 1,
        "updated": 0,
        "unchanged": 0,
        "steps_skipped": 0,
        "unmatched": 0,
        "rejected": 3,
        "outside_window": 0,
        "no_gpu_field": 0,
    }
    assert "line 3: rejected: Start 'yesterday' is not a date and time." in err
    assert "line 4: rejected:" in err and "line 5: rejected:" in err
    run = UsageImport.objects.get()
    assert [entry["line"] for entry in run.rejected_lines] == [3, 4, 5]
    assert run.status == "done" and run.source == "command"


def test_a_value_the_database_cannot_store_rejects_its_line_alone(leonardo):
    # a lone surrogate: what a file read with errors="surrogateescape" hands over for a byte
    # that is not UTF-8; it parses, but no database column can hold it
    lines = sacct_text(
        sacct_line("1"), sacct_line("2", name="bad\udcffname"), sacct_line("3")
    ).split("\n")
    run = usage_import(cluster=leonardo, lines=lines, source="command")
    assert (run.imported, run.rejected, run.status) == (2, 1, UsageImport.Status.DONE)
    assert run.rejected_lines[0]["line"] == 3
    assert run.rejected_lines[0]["reason"].startswith("The database cannot store this line")
    assert sorted(UsageRecord.objects.values_list("job_id", flat=True)) == ["1", "3"]


def test_a_rejected_line_is_kept_as_read_even_with_nul_and_surrogates(leonardo):
    lines = sacct_text(
        sacct_line("1", state=""), sacct_line("2", state="", name="x\udcff\x00")
    ).split("\n")
    run = usage_import(cluster=leonardo, lines=lines, source="command")
    run.refresh_from_db()
    assert run.rejected == 2 and run.status == UsageImport.Status.DONE
    assert run.rejected_lines[1]["text"].endswith("|x?\u2400")


def test_header_without_required_fields_writes_nothing(tmp_path, leonardo):
    with pytest.raises(CommandError, match="lacks required sacct fields: AllocTRES"):
        import_text(tmp_path, "JobID|Account|Start|End|State\n1|acme_llm|x|y|COMPLETED\n")
    assert not UsageImport.objects.exists() and not UsageRecord.objects.exists()


def test_missing_file_is_an_error(leonardo):
    with pytest.raises(CommandError, match="Cannot read"):
        run_command("import_usage", "--cluster", "leonardo", "/no/such/file")


def test_unknown_cluster_is_an_error(tmp_path, reference_data):
    with pytest.raises(CommandError, match="Unknown cluster 'nowhere'"):
        import_text(tmp_path, sacct_text(sacct_line("1")), cluster="nowhere")


def test_unknown_time_zone_is_an_error(tmp_path, leonardo):
    with pytest.raises(CommandError, match="not a known IANA time zone"):
        import_text(tmp_path, sacct_text(sacct_line("1")), "--timezone", "Mars/Olympus")


# --- field order, header-less input, time zones -------------------------------------------------


def test_fields_in_any_order_with_a_header(tmp_path, leonardo):
    text = (
        "State|AllocTRES|End|Start|Account|JobIDRaw|Submit\n"
        "COMPLETED|gres/gpu=2|2026-01-05T11:00:00|2026-01-05T10:00:00|acme_llm|77|"
        "2026-01-05T09:00:00\n"
    )
    counts = summary(import_text(tmp_path, text)[0])
    assert counts["imported"] == 1
    assert UsageRecord.objects.get().gpu_seconds == 2 * 3600  # from End - Start


def test_headerless_input_with_fields(tmp_path, leonardo):
    text = "COMPLETED|77|acme_llm|2026-01-05T10:00:00|2026-01-05T11:00:00|gres/gpu=2|1:00:00\n"
    out, _ = import_text(
        tmp_path, text, "--fields", "State,JobID,Account,Start,End,AllocTRES,Elapsed"
    )
    assert summary(out)["imported"] == 1
    assert UsageRecord.objects.get().gpu_seconds == 7200


def test_times_default_to_the_site_zone_and_timezone_overrides(tmp_path, leonardo):
    import_text(tmp_path, sacct_text(sacct_line("1", start="2026-01-05T09:00:00")))
    # Leonardo is at CINECA, Bologna: 09:00 in Rome in January is 08:00 UTC
    assert UsageRecord.objects.get(job_id="1").start == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    import_text(tmp_path, sacct_text(sacct_line("2")), "--timezone", "UTC")
    assert UsageRecord.objects.get(job_id="2").start == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.usefixtures("merge_plan")
def test_the_same_lines_in_a_wrong_time_zone_do_not_count_the_run_twice(tmp_path, leonardo):
    text = sacct_text(sacct_line("1"), sacct_line("2", state="RUNNING", end="Unknown"))
    import_text(tmp_path, text)  # Leonardo's own zone, Europe/Rome
    before = total_gpu_seconds(leonardo)

    out, err = import_text(tmp_path, text, "--timezone", "UTC")

    assert summary(out)["rejected"] == 2 and summary(out)["imported"] == 0
    assert UsageRecord.objects.count() == 2 and total_gpu_seconds(leonardo) == before
    assert "line 2: rejected: Job 1 is stored already by import run" in err
    assert "with its times 1 h earlier (submitted 2026-01-05 07:00:00 UTC)" in err
    assert "the same run read in another time zone. Not added." in err


@pytest.mark.usefixtures("merge_plan")
def test_new_jobs_around_a_stored_one_are_imported_and_its_shifted_copy_refused(tmp_path, leonardo):
    import_text(tmp_path, sacct_text(sacct_line("5")), "--timezone", "UTC")
    # jobs 4 and 6 are new; the batch's keys span job 5, whose line comes an hour off
    text = sacct_text(
        sacct_line("4"),
        sacct_line("5", submit="2026-01-05T09:00:00", start="2026-01-05T10:00:00",
                   end="2026-01-05T12:00:00"),
        sacct_line("6"),
    )  # fmt: skip

    out, err = import_text(tmp_path, text, "--timezone", "UTC")

    assert (summary(out)["imported"], summary(out)["rejected"]) == (2, 1)
    assert "line 3: rejected: Job 5 is stored already" in err
    assert sorted(UsageRecord.objects.values_list("job_id", flat=True)) == ["4", "5", "6"]
    # and a batch of jobs after every stored one goes in whole
    out, _ = import_text(tmp_path, sacct_text(sacct_line("7"), sacct_line("8")))
    assert (summary(out)["imported"], UsageRecord.objects.count()) == (2, 5)


@pytest.mark.usefixtures("merge_plan")
def test_a_run_stored_beside_a_shifted_copy_meets_the_first_in_key_order(tmp_path, leonardo):
    # both copies can be stored only from imports made before shifts were checked
    from datetime import timedelta

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # rows in any order but the one asked for
            for scan in ("indexscan", "indexonlyscan", "bitmapscan"):
                cursor.execute(f"SET LOCAL enable_{scan} = off")
    text = sacct_text(sacct_line("1"))
    import_text(tmp_path, text, "--timezone", "UTC")
    stored = UsageRecord.objects.get()

    def copy_shifted(hours: int) -> None:
        copy = UsageRecord.objects.get(pk=stored.pk)
        copy.pk = None
        for name in ("submit", "start", "end"):
            setattr(copy, name, getattr(copy, name) + timedelta(hours=hours))
        copy.job_key = f"1@{copy.submit:%Y-%m-%dT%H:%M:%S}Z"
        copy.save()

    copy_shifted(+1)  # its key comes after the run's own
    out, _ = import_text(tmp_path, text, "--timezone", "UTC")
    assert (summary(out)["unchanged"], summary(out)["rejected"]) == (1, 0)
    copy_shifted(-1)  # its key comes first
    out, err = import_text(tmp_path, text, "--timezone", "UTC")
    assert (summary(out)["unchanged"], summary(out)["rejected"]) == (0, 1)
    assert "times 1 h earlier (submitted 2026-01-05 07:00:00 UTC)" in err
    assert UsageRecord.objects.count() == 3


@pytest.mark.usefixtures("merge_plan")
def test_a_wrong_zone_first_and_the_right_one_after_is_refused_the_same_way(tmp_path, leonardo):
    text = sacct_text(sacct_line("1"))
    import_text(tmp_path, text, "--timezone", "Asia/Kolkata")  # five and a half hours off
    out, err = import_text(tmp_path, text)
    assert (summary(out)["rejected"], UsageRecord.objects.count()) == (1, 1)
    assert "times 4.5 h earlier (submitted 2026-01-05 02:30:00 UTC)" in err


@pytest.mark.usefixtures("merge_plan")
def test_a_finished_run_reimported_in_another_zone_does_not_replace_the_running_one(
    tmp_path, leonardo
):
    import_text(tmp_path, sacct_text(sacct_line("1", state="RUNNING", end="Unknown")))
    out, _ = import_text(tmp_path, sacct_text(sacct_line("1")), "--timezone", "America/New_York")
    assert summary(out)["rejected"] == 1
    assert UsageRecord.objects.get().running  # the right-zone pull of the end will update it


@pytest.mark.usefixtures("merge_plan")
def test_times_that_carry_their_offset_or_epoch_seconds_need_no_zone(tmp_path, leonardo):
    offset = sacct_text(
        sacct_line("1", submit="2026-01-05T08:00:00+01:00", start="2026-01-05T09:00:00+01:00",
                   end="2026-01-05T11:00:00+01:00"),
        sacct_line("2", submit="1767596400", start="1767600000", end="1767607200"),
    )  # fmt: skip
    import_text(tmp_path, offset)
    out, _ = import_text(tmp_path, offset, "--timezone", "Pacific/Auckland")
    assert (summary(out)["unchanged"], summary(out)["rejected"]) == (2, 0)


@pytest.mark.usefixtures("merge_plan")
def test_requeued_runs_hours_apart_are_still_separate_runs(tmp_path, leonardo):
    # requeued at a round hour and restarted at one: only the durations tell them apart
    first = sacct_line(
        "400",
        state="REQUEUED",
        submit="2026-01-05T08:00:00",
        start="2026-01-05T09:00:00",
        end="2026-01-05T10:00:00",
        elapsed=3600,
    )
    second = sacct_line("400", submit="2026-01-05T10:00:00", start="2026-01-05T11:00:00",
                        end="2026-01-05T13:00:00", elapsed=7200)  # fmt: skip
    import_text(tmp_path, sacct_text(first))
    out, _ = import_text(tmp_path, sacct_text(second))
    assert (summary(out)["imported"], summary(out)["rejected"]) == (1, 0)


@pytest.mark.parametrize(
    ("new", "old", "shifted"),
    [
        (("08:00", "09:00", "11:00"), ("07:00", "08:00", "10:00"), True),
        (("08:00", "09:00", None), ("07:00", "08:00", "10:00"), True),  # running vs finished
        (("08:00", None, None), ("07:00", None, None), True),  # pending
        (("08:00", "09:00", "11:00"), ("08:00", "09:00", "11:00"), False),  # the same run
        (("08:00", "09:00", "11:00"), ("07:00", "08:00", "09:00"), False),  # other duration
        (("08:00", "09:00", "11:00"), ("07:00", "08:00:07", "10:00:07"), False),  # other start
        (("08:00:05", "09:00", "11:00"), ("07:00", "08:00", "10:00"), False),  # other submit
        (("08:00", "09:00", "11:00"), ("07:30", "08:30", "10:30"), True),  # half-hour zones
    ],
)
def test_a_shift_is_what_two_utc_offsets_make_of_the_same_times(new, old, shifted):
    from usage.importer import time_shifted

    def when(text):
        return None if text is None else datetime.fromisoformat(f"2026-01-05T{text}+00:00")

    submit, start, end = (when(text) for text in new)
    row = ("1@x", *[None] * len(DATA_FIELDS))
    row = list(row)
    row[DATA_FIELDS.index("submit") + 1] = submit
    row[DATA_FIELDS.index("start") + 1] = start
    row[DATA_FIELDS.index("end") + 1] = end
    assert time_shifted(tuple(row), tuple(when(text) for text in old)) is shifted


def test_stdin_is_read_with_a_dash(monkeypatch, leonardo, tmp_path):
    path = tmp_path / "stdin.txt"
    path.write_text(sacct_text(sacct_line("1")), encoding="utf-8")
    with path.open() as handle:
        monkeypatch.setattr("sys.stdin", handle)
        out, _ = run_command("import_usage", "--cluster", "leonardo", "-")
    assert summary(out)["imported"] == 1


def test_progress_is_reported_on_request(tmp_path, leonardo):
    lines = [sacct_line(str(n)) for n in range(5)]
    path = tmp_path / "big.txt"
    path.write_text(sacct_text(*lines), encoding="utf-8")
    run = usage_import(
        cluster=leonardo,
        lines=path.read_text().splitlines(),
        source="command",
        on_progress=seen.append if (seen := []) is not None else None,
        progress_every=2,
    )
    assert run.imported == 5 and seen == [2, 4, 6]


# --- set-based writes -------------------------------------------------------------------------


def test_query_count_grows_with_batches_not_lines(leonardo):
    # Two batches either way; SQLite splits an INSERT above 999 parameters, so the batches are
    # kept small enough for one INSERT each on both databases.
    def queries_for(count: int, batch_size: int) -> int:
        UsageRecord.objects.all().delete()
        text = sacct_text(*(sacct_line(str(n)) for n in range(count)))
        cluster = Cluster.objects.get(pk=leonardo.pk)
        with CaptureQueriesContext(connection) as captured:
            run = usage_import(
                cluster=cluster, lines=text.splitlines(), source="command", batch_size=batch_size
            )
        assert run.imported == count
        return len(captured)

    assert queries_for(4, batch_size=2) == queries_for(40, batch_size=20)


def test_supersedes_rules():
    def version(running: bool, elapsed: int, start=1) -> tuple:
        values = dict.fromkeys(DATA_FIELDS, "")
        values.update(running=running, elapsed_seconds=elapsed, start=start)
        return tuple(values[name] for name in DATA_FIELDS)

    assert supersedes(version(False, 10), version(True, 50))  # finished beats running
    assert not supersedes(version(True, 50), version(False, 10))
    assert supersedes(version(True, 20), version(True, 10))
    assert not supersedes(version(True, 10), version(True, 20))
    assert not supersedes(version(True, 0, None), version(True, 0, 1))  # stale pending
    assert supersedes(version(True, 0, 1), version(True, 0, None))
    assert not supersedes(version(False, 10), version(False, 10))  # identical
    assert supersedes(version(False, 11), version(False, 10))  # a site's correction


def test_parser_and_importer_agree_on_the_gpu_seconds_of_the_fox_sample(fox):
    # hand count of GPU-seconds per account (ElapsedRaw x gres/gpu of the allocation lines):
    #   ec313: 234+256+128+160+155+40+29+148+29+25+23+45 = 1272 (12 jobs, 1 GPU each)
    #   ec35:  1389+127+13 = 1529 (typed gres/gpu:rtx30=1 next to gres/gpu=1: one GPU)
    #   ec395: 206 (974804, gres/gpu:a100=1,gres/gpu=1) + 0 (the other job has no GPU)
    #   others: no GPU at all
    import_sample("sonar-fox-sacct.txt", "--fields", FOX_FIELDS)
    per_account = dict(
        UsageRecord.objects.values_list("account").annotate(s=Sum("gpu_seconds")).order_by()
    )
    assert {k: v for k, v in per_account.items() if v} == {
        "ec313": 1272,
        "ec35": 1529,
        "ec395": 206,
    }
    with sample("sonar-fox-sacct.txt").open() as handle:
        parsed = sum(
            item.gpu_seconds
            for item in parse_sacct(handle, tz=UTC, fields=FOX_FIELDS.split(","))
            if hasattr(item, "gpu_seconds")
        )
    assert parsed == 1272 + 1529 + 206


# --- parsing in a second process --------------------------------------------------------------


def _mixed_pull() -> str:
    lines = [sacct_line(str(n), state="RUNNING", end="Unknown", elapsed=n) for n in range(1, 30)]
    lines += [sacct_line(f"{n}.batch", raw=f"{n}.batch") for n in range(1, 10)]
    return sacct_text(
        *lines,
        "garbage|line",
        sacct_line("3", elapsed=99),  # a run twice in one input: finished after running
        sacct_line("40", account="newco"),
        sacct_line("41", elapsed="lots"),
        sacct_line("4"),
    )


def _stored_runs() -> list[tuple]:
    return list(
        UsageRecord.objects.order_by("job_key").values_list(
            "job_key", *DATA_FIELDS, "allocation_id", "partition_id"
        )
    )


def _imported_afresh(path: Path, cluster, **options) -> tuple:
    """Import `path` into an empty usage table; what the run reported and stored: its summary,
    its rejected lines, the rejections and progress marks it called back with, the runs."""
    UsageRecord.objects.all().delete()
    rejected, progress = [], []
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        run = usage_import(
            cluster=cluster,
            lines=handle,
            source="command",
            on_rejected=lambda item: rejected.append((item.line_no, item.reason)),
            on_progress=progress.append,
            **options,
        )
    return run.summary, run.rejected_lines, rejected, progress, _stored_runs()


def test_parsing_in_a_second_process_counts_and_reports_like_one_process(tmp_path, leonardo):
    path = tmp_path / "pull.txt"
    path.write_text(_mixed_pull(), encoding="utf-8")
    outcomes = [
        _imported_afresh(path, leonardo, parallel=parallel, batch_size=4, progress_every=10)
        for parallel in (False, True)
    ]
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == (
        "imported=29 updated=2 unchanged=0 steps_skipped=9 "
        "unmatched=1 rejected=2 outside_window=0 no_gpu_field=0"
    )
    assert [line for line, _ in outcomes[1][2]] == [40, 43]
    assert outcomes[1][3] == [10, 20, 30, 40]


def test_an_error_while_parsing_in_the_second_process_fails_the_run(tmp_path, leonardo):
    path = tmp_path / "pull.txt"
    # the undecodable bytes come well after the first buffer the parent reads the header from
    steps = [sacct_line(f"1.{n}", raw=f"1.{n}") for n in range(2_000)]
    path.write_bytes(sacct_text(sacct_line("1"), *steps).encode() + b"\xff\n")
    with (
        path.open(encoding="utf-8", newline="") as handle,  # strict: undecodable bytes raise
        pytest.raises(UnicodeDecodeError),
    ):
        usage_import(cluster=leonardo, lines=handle, source="command", parallel=True)
    run = UsageImport.objects.get()
    assert run.status == UsageImport.Status.FAILED
    assert "UnicodeDecodeError" in run.error


def test_text_with_tabs_backslashes_and_line_breaks_is_stored_as_read(leonardo):
    name = "a\\b\tc\rd\\N"
    text = sacct_text(sacct_line("1", name=name, user="x\\y"))
    usage_import(cluster=leonardo, lines=text.split("\n"), source="command")
    record = UsageRecord.objects.get()
    assert (record.job_name, record.user) == (name, "x\\y")


def _pieces_noted(tmp_path: Path, monkeypatch) -> Path:
    """A file the parsing process writes a letter to for each piece: `c` read in columns,
    `l` line by line."""
    import usage.sacct_arrow

    read = usage.sacct_arrow.ArrowSacct.columns
    seen = tmp_path / "pieces.txt"

    def columns(self, data, line_no):
        result = read(self, data, line_no)
        with seen.open("a") as note:
            note.write("l" if result is None else "c")
        return result

    monkeypatch.setattr(usage.sacct_arrow.ArrowSacct, "columns", columns)
    return seen


def test_a_file_read_in_columns_keeps_backslashes_tabs_and_quotes_as_read(
    tmp_path, leonardo, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("the columns (pyarrow) are read on PostgreSQL only")
    import usage.sacct_arrow

    monkeypatch.setattr(usage.sacct_arrow, "CHUNK_BYTES", 256)  # a piece, a batch per line
    seen = _pieces_noted(tmp_path, monkeypatch)
    names = ["plain", "a\\b", "\\N", "tab\there", 'say "hi"', "last", "", "comma,here"]
    lines = [sacct_line(str(100 + n), name=name) for n, name in enumerate(names)]
    path = tmp_path / "pull.txt"
    path.write_text(sacct_text(*lines), encoding="utf-8")
    stored = {}
    for attempt in ("first", "again"):
        with path.open(encoding="utf-8", newline="") as handle:
            run = usage_import(cluster=leonardo, lines=handle, source="command", batch_size=1)
        stored[attempt] = dict(UsageRecord.objects.values_list("job_id", "job_name"))
        counts = (run.imported, run.unchanged, run.rejected)
        assert counts == ((8, 0, 0) if attempt == "first" else (0, 8, 0)), attempt
    assert set(seen.read_text()) == {"c"}  # every piece read in columns
    expected = {str(100 + n): name for n, name in enumerate(names)}
    assert stored["first"] == stored["again"] == expected


def _read_line_by_line_and_in_columns(lines, cluster, tmp_path, monkeypatch, *, tz):
    """The sacct `lines` (or the file's bytes) imported afresh line by line, then in columns
    where they read it, a piece per line: both outcomes (`_imported_afresh`), and a letter per
    piece (`_pieces_noted`)."""
    if connection.vendor != "postgresql":
        pytest.skip("the columns (pyarrow) are read on PostgreSQL only")
    import usage.sacct_arrow

    monkeypatch.setattr(usage.sacct_arrow, "CHUNK_BYTES", 64)
    path = tmp_path / "pull.txt"
    path.write_bytes(lines if isinstance(lines, bytes) else sacct_text(*lines).encode())
    seen = _pieces_noted(tmp_path, monkeypatch)
    outcomes = [
        _imported_afresh(path, cluster, parallel=parallel, tz=tz) for parallel in (False, None)
    ]
    return outcomes, seen.read_text()


def test_numbers_at_and_past_their_limits_are_read_in_columns_as_line_by_line(
    tmp_path, leonardo, monkeypatch
):
    odd = [
        {"energy": "9" * 18},
        {"energy": "9" * 19},
        {"energy": "0"},
        {"energy": "12.5"},
        {"energy": "\u0663"},  # an Arabic-Indic digit: a digit, not an ASCII one
        {"elapsed": "9" * 12},
        {"elapsed": "9" * 13},
        {"elapsed": "+5"},
        {"nodes": "999999"},
        {"nodes": "1000000"},
        {"nodes": ""},
    ]
    lines = []
    for number, fields in enumerate(odd, start=1):
        line = sacct_line(f"{500 + number}", energy=fields.get("energy", ""))
        line = line.replace("|7200|", f"|{fields.get('elapsed', '7200')}|")
        lines.append(line.replace("|1|", f"|{fields.get('nodes', '1')}|"))
    outcomes, pieces = _read_line_by_line_and_in_columns(
        lines, leonardo, tmp_path, monkeypatch, tz="UTC"
    )
    assert outcomes[0] == outcomes[1]
    # in columns: the largest energy and node count stored, an energy that is no whole count
    # (none); line by line: past a limit, or no digits where the line reader decides
    assert pieces == "clccclllcll"
    stored = {job_id: (energy, elapsed, nodes) for job_id, energy, elapsed, nodes in (
        UsageRecord.objects.values_list("job_id", "energy_joules", "elapsed_seconds", "nodes")
    )}  # fmt: skip
    assert stored["501"] == (10**18 - 1, 7200, 1)
    assert stored["509"] == (None, 7200, 999_999)


def test_times_the_line_reader_refuses_are_not_read_in_columns_either(
    tmp_path, leonardo, monkeypatch
):
    starts = [
        "2026-01-05T09:00:00",
        "2026-01-05T09:00:60",  # a leap second: a time a parser may roll over to 09:01
        "2026-02-30T09:00:00",  # ... to 2 March
        "2026-1-05T09:00:00",
        "2026-01-05T9:00:00",
        "2026-01-05 09:00:00",  # a space for the T: read
        "2026-01-05  9:00:00",
        "2024-02-29T09:00:00",  # a leap day: read
        "0001-01-01T09:00:00",  # the calendar's first year: read a time at a time
    ]
    lines = [sacct_line(f"{700 + number}", start=start) for number, start in enumerate(starts, 1)]
    outcomes, pieces = _read_line_by_line_and_in_columns(
        lines, leonardo, tmp_path, monkeypatch, tz="Europe/Rome"
    )
    assert outcomes[0] == outcomes[1]
    assert pieces == "cllllclcc"  # a refused line sends its piece line by line
    assert [line for line, _ in outcomes[1][2]] == [3, 4, 5, 6, 8]
    stored = dict(UsageRecord.objects.values_list("job_id", "start"))
    assert stored["701"] == stored["706"] == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert stored["708"] == datetime(2024, 2, 29, 8, tzinfo=UTC)


def test_bytes_that_are_not_utf8_send_their_piece_line_by_line(tmp_path, leonardo, monkeypatch):
    text = sacct_text(
        sacct_line("901"), sacct_line("902", name="bad"), sacct_line("903", name="café")
    )
    outcomes, pieces = _read_line_by_line_and_in_columns(
        text.encode().replace(b"|bad", b"|b\xffd"), leonardo, tmp_path, monkeypatch, tz="UTC"
    )
    assert outcomes[0] == outcomes[1]
    assert pieces == "clc"  # UTF-8 beyond ASCII is read in columns
    names = dict(UsageRecord.objects.values_list("job_id", "job_name"))
    assert (names["902"], names["903"]) == ("b\ufffdd", "café")


def test_a_run_again_in_a_later_piece_of_a_batch_is_judged_against_the_first(
    tmp_path, leonardo, monkeypatch
):
    lines = [
        sacct_line("800"),  # the first piece is a batch of its own
        sacct_line("801", state="RUNNING", end="Unknown", elapsed=600),
        sacct_line("802"),
        sacct_line("801"),  # the same run, finished: a piece of the same batch in columns
        sacct_line("803"),
    ]
    outcomes, pieces = _read_line_by_line_and_in_columns(
        lines, leonardo, tmp_path, monkeypatch, tz="UTC"
    )
    assert outcomes[0] == outcomes[1]
    assert pieces == "ccccc"
    assert outcomes[1][0].startswith("imported=4 updated=1 unchanged=0 ")
    assert not UsageRecord.objects.get(job_id="801").running
    # in columns, the piece that brings the run again starts a batch
    with (tmp_path / "pull.txt").open(encoding="utf-8", newline="") as handle:
        batches = _arrow_batches(
            handle, handle.buffer, tz=UTC, fields=None, delimiter=None, time_format=None,
            places=_Places(leonardo), batch_size=100, progress_every=0,
            encode=_PostgresWriter.encode,
        )  # fmt: skip
        assert [batch.size for batch in batches] == [1, 2, 2, 0]


def test_a_pieces_key_span_is_found_in_order_or_out_and_a_key_twice_has_none():
    pa = pytest.importorskip("pyarrow")
    from usage.importer.batches import _key_span

    def span(*keys):
        return _key_span(pa.chunked_array([pa.array(keys, pa.string())]))

    assert span("10@a", "11@a", "9@a") == ("10@a", "9@a")  # byte order: "9" after "1"
    assert span("9@a", "11@a", "10@a") == ("10@a", "9@a")
    assert span("5@a") == ("5@a", "5@a")
    assert span("10@a", "10@a", "11@a") is None
    assert span("11@a", "10@a", "11@a") is None


def test_columns_go_as_copy_text_unless_a_text_column_holds_what_it_escapes():
    pa = pytest.importorskip("pyarrow")
    from usage.importer.batches import _arrow_copy

    def written(name: str, key: str):
        rows = _arrow_copy(
            pa.table(
                {
                    "name": pa.array([name], pa.string()),
                    "key": pa.array([key], pa.large_string()),  # as account keys come
                    "energy": pa.array([None], pa.int64()),
                }
            )
        )
        return rows.csv, rows.data

    assert written("train", "acme") == (False, b"train\tacme\t\\N\n")
    assert written("a\\b", "acme") == (True, b'"a\\b","acme",\n')
    assert written("train", "ac\\me") == (True, b'"train","ac\\me",\n')
    assert written('say "hi"', "acme") == (True, b'"say ""hi""","acme",\n')


def test_copy_text_has_one_line_per_row_and_null_markers():
    started = datetime(2026, 1, 5, 9, tzinfo=UTC)
    rows = [
        ("1@k", "Acme", "acme", "1", "alice", "p", "train", "RUNNING", True, None, started, None)
        + (60, 4, 0, 1, 240, None)
        + (None, None, True, False, 12),
        ("2@k", "acme", "acme", "2", "bob", "p", "x\ty", "COMPLETED", False, started, started)
        + (started, 0, 0, 7, 1, 0, 7)
        + (3, 5, False, True, 13),
    ]
    assert _copy_data(rows).decode().splitlines() == [
        "1@k\tAcme\tacme\t1\talice\tp\ttrain\tRUNNING\tt\t\\N\t1767603600\t\\N\t60\t4\t0\t1"
        "\t240\t\\N\t\\N\t\\N\tt\tf\t12",
        "2@k\tacme\tacme\t2\tbob\tp\tx\\ty\tCOMPLETED\tf\t1767603600"
        "\t1767603600\t1767603600\t0\t0\t7\t1\t0\t7\t3\t5\tf\tt\t13",
    ]


def test_fractions_of_a_second_are_kept(leonardo):
    line = sacct_line("1", start="2026-01-05T09:00:00.250", end="2026-01-05T11:00:00.250")
    usage_import(cluster=leonardo, lines=sacct_text(line).split("\n"), source="command")
    assert UsageRecord.objects.get().start.microsecond == 250_000


# --- inputs that leave informative fields out --------------------------------------------------


@pytest.mark.usefixtures("merge_plan")
def test_a_run_is_stored_with_the_partition_its_line_names(leonardo):
    def partitions() -> dict[str, str | None]:
        found = UsageRecord.objects.values_list("job_id", "partition__name")
        return dict(found.order_by("job_id"))

    def imported(*lines: str) -> UsageImport:
        return usage_import(cluster=leonardo, lines=sacct_text(*lines).split("\n"), source="cmd")

    imported(sacct_line("1"), sacct_line("2", partition="lrd_all_serial"))
    assert partitions() == {"1": "boost_usr_prod", "2": None}  # a partition the site lacks
    # moved to the other's partition, and a new run beside them
    again = imported(sacct_line("1", partition="lrd_all_serial"), sacct_line("2"), sacct_line("3"))
    assert (again.updated, again.imported) == (2, 1)
    assert partitions() == {"1": None, "2": "boost_usr_prod", "3": "boost_usr_prod"}


@pytest.mark.usefixtures("merge_plan")
def test_a_narrower_field_list_keeps_what_it_does_not_report(leonardo):
    full = sacct_text(sacct_line("7", energy="3600000", name="pretrain-7b", user="bob"))
    usage_import(cluster=leonardo, lines=full.split("\n"), source="command")
    narrow = "\n".join(
        [
            "JobIDRaw|Account|State|Submit|Start|End|ElapsedRaw|AllocTRES",
            "7|acme_llm|COMPLETED|2026-01-05T08:00:00|2026-01-05T09:00:00|2026-01-05T11:00:00|"
            "7000|gres/gpu=4",
        ]
    )
    corrected = usage_import(cluster=leonardo, lines=narrow.split("\n"), source="command")
    assert (corrected.updated, corrected.unchanged) == (1, 0)  # the elapsed time was corrected
    record = UsageRecord.objects.get()
    assert record.elapsed_seconds == 7000 and record.gpu_seconds == 4 * 7000
    assert (record.energy_joules, record.job_name, record.user) == (3600000, "pretrain-7b", "bob")
    assert record.partition_name == "boost_usr_prod" and record.partition is not None
    again = usage_import(cluster=leonardo, lines=narrow.split("\n"), source="command")
    assert (again.updated, again.unchanged) == (0, 1)
    new_job = narrow.replace("\n7|", "\n8|")
    usage_import(cluster=leonardo, lines=new_job.split("\n"), source="command")
    fresh = UsageRecord.objects.get(job_id="8")
    assert (fresh.energy_joules, fresh.job_name, fresh.partition_name) == (None, "", "")


# --- GPUs: MIG slices, lines without a GPU field, more GPUs than the partition has ------------


FIXTURES = Path(__file__).parent / "fixtures" / "accounting"


def a100_partition(cluster, name: str, **fields) -> Partition:
    values = {
        "accelerator": "NVIDIA A100 40 GB",
        "gpus_per_node": 8,
        "nodes": 4,
        "peak_tflops": Decimal("312.00"),
        "power_watts": 400,
        **fields,
    }
    return Partition.objects.create(cluster=cluster, name=name, **values)


@pytest.fixture
def mig_cluster(reference_data):
    cluster = make_cluster()
    a100_partition(cluster, "a100-mig")
    a100_partition(cluster, "a100-mixed")
    make_allocation(start=SINCE, cluster=cluster, account="mig_users")
    return cluster


def test_mig_slices_count_at_their_share_of_a_gpu(mig_cluster):
    out, err = run_command(
        "import_usage", "--cluster", "fox", "--timezone", "UTC", str(FIXTURES / "sacct-mig.txt")
    )
    counts = summary(out)
    assert (counts["imported"], counts["rejected"]) == (5, 1)
    # seven 1g slices for an hour are one A100-hour, not seven; 2 x 3g is 6/7; a whole A100
    # beside a 2g slice is 1 + 2/7; a pending job uses nothing
    stored = {r.job_id: (r.gpus, r.gpu_slices, r.gpu_seconds) for r in UsageRecord.objects.all()}
    assert stored == {
        "5000001": (0, 1, round(3600 / 7)),
        "5000002": (0, 7, 3600),
        "5000003": (0, 2, round(3600 * 6 / 7)),
        "5000004": (1, 1, round(3600 * 9 / 7)),
        "5000005": (0, 2, 0),
    }
    # a compute instance inside a 3g instance is no profile of the A100 table: named, not guessed
    assert err.startswith("line 7: rejected: Job 5000006 on partition a100-mig:")
    assert "'1c.3g.40gb'" in err


def test_a_partition_declares_its_own_slice_profiles(mig_cluster):
    a30 = a100_partition(
        mig_cluster,
        "a30",
        accelerator="NVIDIA A30 24 GB",
        gpu_slice_profiles={"1g": 0.25, "2g": 0.5, "4g": 1},
    )
    text = sacct_text(
        sacct_line("1", account="mig_users", partition=a30.name, tres="gres/gpu:2g.12gb=2"),
        sacct_line("2", account="mig_users", partition=a30.name, tres="gres/gpu:3g.40gb=1"),
    )
    result = usage_import(cluster=mig_cluster, lines=text.split("\n"), source="command")
    assert (result.imported, result.rejected) == (1, 1)
    assert UsageRecord.objects.get(job_id="1").gpu_seconds == 7200  # two halves, two hours
    assert "'3g.40gb'" in result.rejected_lines[0]["reason"]
    assert "(1g, 2g, 4g)" in result.rejected_lines[0]["reason"]


def test_a_partition_without_slices_rejects_a_slice_by_its_name(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster="lumi", account="acme_llm")
    line = sacct_line("1", partition="standard-g", tres="gres/gpu=1,gres/gpu:1g.10gb=1")
    _, err = import_text(tmp_path, sacct_text(line), cluster="lumi")
    assert "'1g.10gb'" in err and "declared for the partition (none)" in err
    assert not UsageRecord.objects.exists()


def test_compute_and_energy_of_slices_follow_their_share(mig_cluster):
    text = sacct_text(
        sacct_line("1", account="mig_users", partition="a100-mig", tres="gres/gpu:1g.10gb=7")
    )
    usage_import(cluster=mig_cluster, lines=text.split("\n"), source="command")
    report = json.loads(
        run_command("usage_report", "--account", "mig_users", "--cluster", "fox")[0]
    )
    # two hours on seven 1g slices: two A100-hours at 312 TFLOP/s and 400 W
    assert report["gpu_hours"] == pytest.approx(2.0)
    assert report["flop_upper_bound"] == pytest.approx(2 * 3600 * 312e12)
    assert report["energy_kwh"] == pytest.approx(0.8)


def test_a_gpu_partition_line_without_any_gpu_field_is_counted_in_the_summary(tmp_path, leonardo):
    text = "\n".join(
        [
            "JobIDRaw|Account|Partition|State|Submit|Start|End|ElapsedRaw|AllocGRES",
            "1|acme_llm|boost_usr_prod|COMPLETED|2026-01-05T08:00:00|2026-01-05T09:00:00|"
            "2026-01-05T10:00:00|3600|",
            "2|acme_llm|boost_usr_prod|COMPLETED|2026-01-05T08:00:00|2026-01-05T09:00:00|"
            "2026-01-05T10:00:00|3600|gpu:4",
            # a partition this site does not run: a CPU partition's lines name no GPUs
            "3|acme_llm|cpu_only|COMPLETED|2026-01-05T08:00:00|2026-01-05T09:00:00|"
            "2026-01-05T10:00:00|3600|",
        ]
    )
    out, _ = import_text(tmp_path, text + "\n")
    assert out.strip().endswith(
        "imported=3 updated=0 unchanged=0 steps_skipped=0 unmatched=0 rejected=0 "
        "outside_window=0 no_gpu_field=1"
    )
    assert UsageImport.objects.get().no_gpu_field == 1
    assert UsageRecord.objects.get(job_id="1").gpus == 0


def test_more_gpus_than_the_partition_has_is_rejected(tmp_path, reference_data):
    make_allocation(start=SINCE, cluster=make_cluster(), account="ec313")  # accel: 10 x 4 GPUs
    text = sacct_text(
        sacct_line("1", account="ec313", partition="accel", tres="gres/gpu=40"),
        sacct_line("2", account="ec313", partition="accel", tres="gres/gpu=64"),
    )
    out, err = import_text(tmp_path, text, cluster="fox")
    assert (summary(out)["imported"], summary(out)["rejected"]) == (1, 1)
    assert "line 3: rejected: Job 2 has 64 GPUs, more than partition accel has (40)." in err


def _columns_and_lines_pull() -> str:
    """A generated dump (plain pieces), with lines only the line-by-line reader reads spread
    through it: a rejected line, a MIG slice, a run twice; and lines the columns read too:
    times in the hour that Rome's clocks skip and in the hour they repeat, a job before the
    allocation's window."""
    from bench.generate import sacct_lines

    def line(job, submit="2026-01-05T08:00:00", start="2026-01-05T09:00:00", **fields):
        values = {"state": "COMPLETED", "end": "2026-01-05T11:00:00", "elapsed": 7200}
        values["tres"] = "billing=8,cpu=8,gres/gpu=4,mem=64G,node=1"
        values.update(fields)
        return (
            f"{job}|{job}|alice|acme_llm|boost_usr_prod|{values['state']}|{submit}|{start}|"
            f"{values['end']}|{values['elapsed']}|{values['tres']}|1||train"
        )

    lines = list(sacct_lines(400, seed=3))
    odd = [
        "garbage|line",
        line("900001", tres="billing=1,gres/gpu:1g.10gb=2,gres/gpu=2,node=1"),
        line("900002", submit="2026-03-29T02:10:00", start="2026-03-29T02:30:00"),
        line("900003", submit="2026-10-25T02:10:00", start="2026-10-25T02:30:00"),
        line("900004", submit="2008-06-01T08:00:00", start="2008-06-01T09:00:00"),
        line("900005", state="RUNNING", end="Unknown", elapsed=60),
        line("900005"),
    ]
    step = len(lines) // (len(odd) + 1)
    for index, each in enumerate(odd, start=1):
        lines.insert(index * step, each)
    return "\n".join(lines) + "\n"


def test_a_file_read_in_columns_is_stored_and_counted_as_read_line_by_line(
    tmp_path, leonardo, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("the columns (pyarrow) are read on PostgreSQL only")
    import usage.sacct_arrow

    make_allocation(start=SINCE, cluster="leonardo", account="proj_017")
    monkeypatch.setattr(usage.sacct_arrow, "CHUNK_BYTES", 8192)  # dozens of pieces
    seen = _pieces_noted(tmp_path, monkeypatch)
    path = tmp_path / "pull.txt"
    path.write_text(_columns_and_lines_pull(), encoding="utf-8")
    # parallel=False reads line by line; by default an open file is read in columns
    outcomes = [
        _imported_afresh(
            path, leonardo, parallel=parallel, tz="Europe/Rome",
            batch_size=100,  # several pieces to a batch
            progress_every=250,
        )
        for parallel in (False, None)
    ]  # fmt: skip
    pieces = seen.read_text()
    assert pieces.count("c") > 10 and pieces.count("l") >= 2  # the garbage line, the MIG slice
    assert outcomes[0] == outcomes[1]
    summary_line = outcomes[1][0]
    assert "rejected=1 " in summary_line and "outside_window=1 " in summary_line
    assert UsageRecord.objects.filter(job_key__startswith="900001@", gpu_slices=2).exists()
    # 02:30 on 29 March does not exist in Rome: read with the offset before the change
    skipped = UsageRecord.objects.get(job_key__startswith="900002@")
    assert skipped.start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 02:30 on 25 October happens twice: read as the first, in summer time
    repeated = UsageRecord.objects.get(job_key__startswith="900003@")
    assert repeated.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert not UsageRecord.objects.get(job_key__startswith="900005@").running


@pytest.mark.parametrize("when", ["between batches", "after the last batch"])
def test_a_stop_the_import_learns_of_by_asking_ends_the_run_interrupted(leonardo, when):
    from usage.importer import UsageImportInterrupted

    lines = sacct_text(*(sacct_line(str(n)) for n in range(1, 7))).split("\n")
    asked = []
    # three batches of two lines: asked before each, then once at the end
    stop_at = 2 if when == "between batches" else 4

    def stopped():
        asked.append(True)
        return UsageImportInterrupted("Ctrl-C", signal.SIGINT) if len(asked) == stop_at else None

    with pytest.raises(UsageImportInterrupted):
        usage_import(cluster=leonardo, lines=lines, source="command", batch_size=2, stopped=stopped)

    run = UsageImport.objects.get()
    assert run.status == UsageImport.Status.INTERRUPTED
    assert "importing the same input again completes it" in run.error
    assert run.imported == UsageRecord.objects.count() == (2 if when == "between batches" else 6)
