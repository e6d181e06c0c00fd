"""The pure accounting parser: sacct and PBS lines in, job records out. No database, except in
the last section: import_usage handing its reading options to the parser."""

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError

from systems.models import Cluster
from tests.factories import make_allocation
from tests.usage.sacct import FOX_FIELDS, SAMPLES, SINCE, XDMOD_FIELDS, run_command
from usage.accounting import (
    ELAPSED_LIMIT_SECONDS,
    GPU_CEILING,
    LINE_LENGTH_LIMIT,
    MIG_PROFILES,
    SACCT_REQUIRED,
    AccountingFormatError,
    JobRecord,
    Rejected,
    StepSkipped,
    UnknownSliceProfile,
    account_key,
    account_problem,
    gpu_equivalents,
    mig_profile,
    parse_alloc_gres_gpus,
    parse_alloc_tres_gpus,
    parse_elapsed,
    parse_pbs,
    parse_sacct,
    parse_time,
)
from usage.models import UsageImport, UsageRecord

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "accounting"

OSLO = ZoneInfo("Europe/Oslo")

HEADER = (
    "JobID|JobIDRaw|Account|User|Partition|State|Submit|Start|End|ElapsedRaw|AllocTRES|NNodes"
    "|ConsumedEnergyRaw|JobName"
)
DEFAULTS = {
    "JobID": "123",
    "JobIDRaw": "123",
    "Account": "acme_llm",
    "User": "alice",
    "Partition": "standard-g",
    "State": "COMPLETED",
    "Submit": "2024-11-13T08:00:00",
    "Start": "2024-11-13T09:00:00",
    "End": "2024-11-13T10:00:00",
    "ElapsedRaw": "3600",
    "AllocTRES": "billing=128,cpu=56,gres/gpu=8,mem=480G,node=1",
    "NNodes": "1",
    "ConsumedEnergyRaw": "",
    "JobName": "train",
}


def sacct_line(**values: str) -> str:
    row = {**DEFAULTS, **values}
    return "|".join(row[name] for name in HEADER.split("|")) + "\n"


def parse(*lines: str, tz: ZoneInfo = OSLO) -> list[JobRecord | Rejected | StepSkipped]:
    return list(parse_sacct([HEADER + "\n", *lines], tz=tz))


def only_job(*lines: str, tz: ZoneInfo = OSLO) -> JobRecord:
    (result,) = parse(*lines, tz=tz)
    assert isinstance(result, JobRecord), result
    return result


def only_rejection(*lines: str) -> Rejected:
    (result,) = parse(*lines)
    assert isinstance(result, Rejected), result
    return result


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parse_elapsed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3-00:00:00", 3 * 86400),
        ("2-22:03:04", 2 * 86400 + 22 * 3600 + 3 * 60 + 4),
        ("14:00:49", 14 * 3600 + 49),
        ("00:00:00", 0),
        ("05:06", 5 * 60 + 6),  # MM:SS, as sacct prints times under an hour
        ("22:53.824", 22 * 60 + 53),  # MM:SS.mmm: the fraction is dropped
        ("96:00:00", 96 * 3600),  # PBS walltime counts hours past a day
    ],
)
def test_elapsed_reads_every_sacct_and_pbs_form(text, seconds):
    assert parse_elapsed(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "abc", "UNLIMITED", "1:75:00", "00:61", "-00:05:00", "1-05:06", "1:2:3:4"]
)
def test_elapsed_refuses_what_is_not_a_duration(text):
    with pytest.raises(ValueError):
        parse_elapsed(text)


# --- parse_alloc_tres_gpus -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1,mem=32G,node=1", 1),
        ("billing=20,cpu=20,gres/gpu:rtx30=1,gres/gpu=1,mem=50G,node=1", 1),
        ("cpu=64,gres/gpu:h100=4,gres/gpu=4,node=1", 4),
    ],
)
def test_typed_and_plain_gpu_entries_count_once(tres, gpus):
    assert parse_alloc_tres_gpus(tres) == gpus


def test_typed_gpu_entries_are_summed_when_no_plain_total_is_listed():
    assert parse_alloc_tres_gpus("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1,node=1") == 3


def test_lumi_counts_eight_scheduler_gpus_per_node():
    assert parse_alloc_tres_gpus("billing=128,cpu=56,gres/gpu=8,mem=480G,node=1") == 8


@pytest.mark.parametrize(
    "tres",
    ["", "billing=6,cpu=6,mem=10000M,node=1", "cpu=4,gres/gpumem=40G,gres/gpuutil=50,gres/shard=2"],
)
def test_tres_without_gpus_counts_zero(tres):
    assert parse_alloc_tres_gpus(tres) == 0


def test_tres_with_a_gpu_count_that_is_no_number_is_refused():
    with pytest.raises(ValueError, match="gres/gpu=two"):
        parse_alloc_tres_gpus("cpu=1,gres/gpu=two")


# --- parse_time ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Unknown", "None", ""])
def test_time_that_sacct_does_not_know_is_none(text):
    assert parse_time(text, OSLO) is None


def test_naive_time_is_read_in_the_cluster_zone():
    assert parse_time("2024-11-13T11:08:00", OSLO) == utc(2024, 11, 13, 10, 8)  # CET, +01:00
    assert parse_time("2024-07-01T12:00:00", OSLO) == utc(2024, 7, 1, 10, 0)  # CEST, +02:00


def test_autumn_hour_that_happens_twice_is_read_as_the_summer_time_one():
    # 2024-10-27 Oslo: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30Z and 01:30Z
    assert parse_time("2024-10-27T02:30:00", OSLO) == utc(2024, 10, 27, 0, 30)


def test_spring_time_that_never_happened_uses_the_offset_before_the_change():
    # 2024-03-31 Oslo: 02:00 CET jumps to 03:00 CEST; 02:30 is read as CET
    assert parse_time("2024-03-31T02:30:00", OSLO) == utc(2024, 3, 31, 1, 30)


@pytest.mark.parametrize("text", ["2024-11-13T11:08:00+02:00", "2024-11-13T09:08:00Z"])
def test_time_with_its_own_offset_keeps_it(text):
    assert parse_time(text, OSLO) == utc(2024, 11, 13, 9, 8)


@pytest.mark.parametrize("text", ["2024-13-40T00:00:00", "yesterday", "13/11/2024 11:08"])
def test_text_that_is_not_a_time_is_refused(text):
    with pytest.raises(ValueError):
        parse_time(text, OSLO)


@pytest.mark.parametrize(
    ("zone", "local_change"),
    [
        ("Europe/Oslo", datetime(2024, 3, 31, 2)),
        ("Europe/Oslo", datetime(2024, 10, 27, 2)),
        ("America/St_Johns", datetime(2024, 11, 3, 1)),  # -02:30 -> -03:30
        ("Australia/Lord_Howe", datetime(2024, 4, 7, 1)),  # half-hour summer time
        ("Asia/Kolkata", datetime(2024, 6, 1, 0)),  # +05:30, no change at all
    ],
)
def test_job_times_and_key_agree_with_zoneinfo_minute_by_minute_around_zone_changes(
    zone, local_change
):
    tz = ZoneInfo(zone)
    moments = [local_change + timedelta(minutes=m) for m in range(-150, 150, 7)]
    texts = [moment.isoformat() for moment in moments]
    lines = [
        sacct_line(JobIDRaw=str(n), JobID=str(n), Submit=text, Start=text, End="Unknown")
        for n, text in enumerate(texts)
    ]
    jobs = parse(*lines, tz=tz)
    for text, job in zip(texts, jobs, strict=True):
        expected = parse_time(text, tz)
        assert job.start == expected, text
        assert job.job_key == f"{job.job_id_raw}@{expected:%Y-%m-%dT%H:%M:%S}Z", text


# --- sacct: job ids and steps ----------------------------------------------------------------


def test_plain_job_id_is_the_display_id_and_the_key_adds_the_submit_time_in_utc():
    job = only_job(sacct_line(JobID="123", JobIDRaw="123", Submit="2024-11-13T08:00:00"))
    assert (job.job_id, job.job_id_raw) == ("123", "123")
    assert job.job_key == "123@2024-11-13T07:00:00Z"


def test_array_task_shows_its_array_id_and_is_keyed_by_its_raw_id():
    job = only_job(sacct_line(JobID="123_4", JobIDRaw="130"))
    assert (job.job_id, job.job_id_raw) == ("123_4", "130")
    assert job.job_key.startswith("130@")


def test_heterogeneous_job_component_is_its_own_job():
    job = only_job(sacct_line(JobID="123+1", JobIDRaw="124"))
    assert (job.job_id, job.job_id_raw) == ("123+1", "124")


def test_pending_array_is_a_job_that_has_used_nothing():
    job = only_job(
        sacct_line(
            JobID="123_[1-5]",
            JobIDRaw="123",
            State="PENDING",
            Start="Unknown",
            End="Unknown",
            ElapsedRaw="0",
            AllocTRES="",
        )
    )
    assert job.job_id == "123_[1-5]"
    assert (job.start, job.end, job.elapsed_seconds, job.gpus) == (None, None, 0, 0)
    assert job.running
    assert job.gpu_seconds == 0


@pytest.mark.parametrize("step", ["123.batch", "123.extern", "123.0", "123_4.batch", "123+1.0"])
def test_step_line_is_skipped_not_counted(step):
    results = parse(sacct_line(), sacct_line(JobID=step, JobIDRaw=step, Account=""))
    assert isinstance(results[0], JobRecord)
    assert results[1] == StepSkipped(line_no=3)


def test_step_is_recognised_when_the_id_is_not_the_first_field():
    lines = ["Account|State|JobIDRaw|Start|End|AllocTRES\n", "a|COMPLETED|77.batch|x|y|z\n"]
    assert list(parse_sacct(lines, tz=OSLO)) == [StepSkipped(line_no=2)]


def test_only_job_id_raw_is_enough_to_key_a_job():
    lines = [
        "JobIDRaw|Account|State|Start|End|AllocTRES\n",
        "55|acme|COMPLETED|2024-11-13T09:00:00|2024-11-13T09:10:00|gres/gpu=2\n",
    ]
    (job,) = parse_sacct(lines, tz=OSLO)
    assert (job.job_id, job.job_id_raw, job.job_key) == ("55", "55", "55")
    assert job.gpu_seconds == 2 * 600  # no Elapsed field: End - Start


def test_without_an_end_field_the_state_tells_finished_from_running():
    lines = [
        "JobIDRaw|Account|State|Start|ElapsedRaw|AllocTRES\n",
        "56|acme|COMPLETED|2024-11-13T09:00:00|600|gres/gpu=2\n",
        "57|acme|RUNNING|2024-11-13T09:00:00|300|gres/gpu=2\n",
        "58|acme|CANCELLED by 1000|Unknown|0|gres/gpu=2\n",
    ]
    finished, running, cancelled = parse_sacct(lines, tz=UTC)
    assert (finished.running, finished.end) == (False, utc(2024, 11, 13, 9, 10))
    assert (running.running, running.end, running.elapsed_seconds) == (True, None, 300)
    assert (cancelled.running, cancelled.end, cancelled.gpu_seconds) == (False, None, 0)


# --- sacct: states ---------------------------------------------------------------------------


def test_cancelled_by_a_user_is_cancelled():
    job = only_job(sacct_line(State="CANCELLED by 2101477"))
    assert job.state == "CANCELLED"
    assert not job.running


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"])
def test_ended_job_is_not_running(state):
    job = only_job(sacct_line(State=state))
    assert (job.state, job.running, job.end) == (state, False, utc(2024, 11, 13, 9, 0))


@pytest.mark.parametrize("state", ["RUNNING", "SUSPENDED", "RESIZING", "COMPLETING"])
def test_job_still_going_is_running_with_its_elapsed_so_far(state):
    job = only_job(sacct_line(State=state, End="Unknown", ElapsedRaw="1800"))
    assert (job.state, job.running, job.end, job.elapsed_seconds) == (state, True, None, 1800)
    assert job.gpu_seconds == 8 * 1800


def test_end_that_sacct_prints_for_a_running_job_is_not_taken_as_its_end():
    job = only_job(sacct_line(State="RUNNING", End="2024-11-13T09:00:00", ElapsedRaw="900"))
    assert job.running
    assert job.end is None


def test_unknown_end_means_running_whatever_the_state():
    job = only_job(sacct_line(State="REQUEUED", End="Unknown"))
    assert job.running


def test_earlier_requeued_run_that_has_ended_is_finished():
    # sacct -D: the run that was requeued has its End; the next run has its own Submit
    job = only_job(sacct_line(State="REQUEUED", End="2024-11-13T10:00:00"))
    assert not job.running
    assert job.end == utc(2024, 11, 13, 9, 0)


def test_state_never_seen_before_is_kept():
    assert only_job(sacct_line(State="FOO")).state == "FOO"
    assert only_job(sacct_line(State="deadline")).state == "DEADLINE"


# --- sacct: job keys -------------------------------------------------------------------------


def test_run_keeps_its_key_from_pending_through_running_to_completed():
    pending = only_job(sacct_line(State="PENDING", Start="Unknown", End="Unknown", ElapsedRaw="0"))
    running = only_job(sacct_line(State="RUNNING", End="Unknown", ElapsedRaw="1200"))
    completed = only_job(sacct_line(State="COMPLETED"))
    assert pending.job_key == running.job_key == completed.job_key == "123@2024-11-13T07:00:00Z"


def test_requeued_runs_of_one_job_have_different_keys():
    first, second = parse(
        sacct_line(State="REQUEUED", Submit="2024-11-13T08:00:00"),
        sacct_line(State="COMPLETED", Submit="2024-11-13T10:05:00", Start="2024-11-13T10:06:00"),
    )
    assert first.job_id_raw == second.job_id_raw
    assert first.job_key != second.job_key


def test_key_is_the_same_whether_sacct_printed_local_time_or_utc():
    local = only_job(sacct_line(Submit="2024-11-13T08:00:00"), tz=OSLO)
    in_utc = only_job(sacct_line(Submit="2024-11-13T07:00:00"), tz=ZoneInfo("UTC"))
    assert local.job_key == in_utc.job_key


def test_job_without_submit_time_is_keyed_by_its_raw_id():
    assert only_job(sacct_line(Submit="Unknown")).job_key == "123"


# --- sacct: figures --------------------------------------------------------------------------


def test_record_times_are_aware_utc():
    job = only_job(sacct_line())
    assert job.submit == utc(2024, 11, 13, 7, 0)
    assert job.start == utc(2024, 11, 13, 8, 0)
    assert job.end == utc(2024, 11, 13, 9, 0)
    assert job.start.utcoffset() == timedelta(0)


def test_elapsed_raw_wins_over_start_and_end():
    assert only_job(sacct_line(ElapsedRaw="3500")).elapsed_seconds == 3500


def test_elapsed_text_is_read_when_there_is_no_elapsed_raw():
    lines = [
        "JobID|Account|State|Start|End|Elapsed|AllocTRES\n",
        "9|a|TIMEOUT|2015-06-28T02:55:50|2015-07-01T02:55:50|3-00:00:00|gres/gpu=4\n",
    ]
    (job,) = parse_sacct(lines, tz=OSLO)
    assert job.gpu_seconds == 4 * 259200


def test_nodes_come_from_the_tres_string_without_nnodes():
    job = only_job(sacct_line(NNodes="", AllocTRES="cpu=512,gres/gpu=32,node=4"))
    assert (job.nodes, job.gpus) == (4, 32)


@pytest.mark.parametrize(
    ("energy", "joules"),
    [("123456", 123456), ("0", None), ("", None), ("18446744073709551614", None), ("n/a", None)],
)
def test_measured_energy_is_kept_only_when_there_is_a_reading(energy, joules):
    assert only_job(sacct_line(ConsumedEnergyRaw=energy)).energy_joules == joules


def test_multibyte_job_name_is_kept():
    assert only_job(sacct_line(JobName="træning-æøå-模型")).job_name == "træning-æøå-模型"


def test_a_job_record_is_built_with_every_field_and_cannot_change():
    job = only_job(sacct_line())
    expected = JobRecord(
        line_no=2,
        job_key="123@2024-11-13T07:00:00Z",
        job_id_raw="123",
        job_id="123",
        account="acme_llm",
        user="alice",
        partition="standard-g",
        state="COMPLETED",
        submit=utc(2024, 11, 13, 7, 0),
        start=utc(2024, 11, 13, 8, 0),
        end=utc(2024, 11, 13, 9, 0),
        elapsed_seconds=3600,
        gpus=8,
        nodes=1,
        energy_joules=None,
        job_name="train",
        running=False,
    )
    assert type(job) is JobRecord
    assert job == expected
    assert hash(job) == hash(expected)
    with pytest.raises(AttributeError):
        job.gpus = 0
    assert job._replace(gpus=4).gpu_seconds == 4 * 3600


def test_both_readers_build_records_with_every_field():
    pbs_line = "01/01/2024 01:00:00;E;8.s;user=u account=acme start=1704067200 end=1704070800\n"
    for job in (only_job(sacct_line()), *parse_pbs([pbs_line], tz=UTC)):
        assert type(job) is JobRecord
        assert len(job) == len(JobRecord._fields)
        assert job == JobRecord(*job)


# --- sacct: rejected lines -------------------------------------------------------------------


def test_job_without_account_is_rejected():
    rejected = only_rejection(sacct_line(Account=""))
    assert rejected.reason == "Job 123 has no account."
    assert rejected.line_no == 2
    assert rejected.text == sacct_line(Account="").rstrip("\n")


@pytest.mark.parametrize("field", ["Submit", "Start", "End"])
def test_time_that_is_not_a_time_is_rejected_with_the_field_named(field):
    rejected = only_rejection(sacct_line(**{field: "2024-13-40T00:00:00"}))
    assert rejected.reason == f"{field} '2024-13-40T00:00:00' is not a date and time."


def test_elapsed_that_is_not_a_number_is_rejected():
    assert "ElapsedRaw '1h'" in only_rejection(sacct_line(ElapsedRaw="1h")).reason


def test_negative_elapsed_is_rejected():
    assert "negative" in only_rejection(sacct_line(ElapsedRaw="-5")).reason


def test_job_that_ends_before_it_starts_is_rejected():
    lines = [
        "JobID|Account|State|Start|End|AllocTRES\n",
        "9|a|COMPLETED|2024-11-13T10:00:00|2024-11-13T09:00:00|gres/gpu=1\n",
    ]
    (rejected,) = parse_sacct(lines, tz=OSLO)
    assert rejected.reason == "Job 9 ends before it starts."


def test_gpu_count_that_is_not_a_number_is_rejected_naming_alloc_tres():
    reason = only_rejection(sacct_line(AllocTRES="cpu=1,gres/gpu=x")).reason
    assert reason.startswith("AllocTRES 'cpu=1,gres/gpu=x'")


def test_line_with_the_wrong_number_of_fields_is_rejected_saying_expected_and_got():
    rejected = only_rejection("123|123|acme|alice\n")
    assert rejected.reason == "The line has 4 fields but the header names 14."


def test_rejected_text_is_trimmed_to_500_characters():
    rejected = only_rejection(sacct_line(Account="", JobName="x" * 900))
    assert len(rejected.text) == 500


# --- sacct: the input as a whole -------------------------------------------------------------


def test_header_without_required_fields_is_refused_naming_them():
    with pytest.raises(AccountingFormatError) as error:
        list(parse_sacct(["JobID|User|Start\n", "1|u|Unknown\n"], tz=OSLO))
    message = str(error.value)
    assert "Account" in message
    assert "End or ElapsedRaw or Elapsed" in message
    assert "AllocTRES" in message
    assert "State" in message
    assert "JobIDRaw or JobID" not in message


def test_headerless_data_read_as_a_header_is_refused_with_a_hint():
    with pytest.raises(AccountingFormatError, match="--format"):
        list(parse_sacct([sacct_line()], tz=OSLO))


def test_header_in_the_wrong_case_says_names_are_case_sensitive():
    with pytest.raises(AccountingFormatError, match="case-sensitive: found account"):
        list(parse_sacct([HEADER.replace("Account", "account") + "\n"], tz=OSLO))


def test_field_list_without_required_fields_is_refused_at_once():
    with pytest.raises(AccountingFormatError, match="AllocTRES"):
        parse_sacct([], tz=OSLO, fields=["JobID", "Account", "State", "Start", "End"])


def test_field_list_with_an_empty_name_is_refused():
    with pytest.raises(AccountingFormatError, match="empty field name"):
        parse_sacct([], tz=OSLO, fields=HEADER.split("|") + [""])


def test_required_fields_are_jobid_account_start_end_or_elapsed_tres_and_state():
    # CONTRACT.md: the GPUs in AllocTRES or AllocGRES (older Slurm prints only the latter)
    assert SACCT_REQUIRED == (
        ("JobIDRaw", "JobID"),
        ("Account",),
        ("Start",),
        ("End", "ElapsedRaw", "Elapsed"),
        ("AllocTRES", "AllocGRES"),
        ("State",),
    )


def test_field_list_as_passed_to_sacct_format_is_accepted():
    fields = "jobid,jobidraw,account%20,user,partition,state,submit,start,end,elapsedraw,"
    fields += "alloctres,nnodes,consumedenergyraw,jobname%50"
    (job,) = parse_sacct([sacct_line()], tz=OSLO, fields=fields)
    assert (job.line_no, job.account, job.gpu_seconds) == (1, "acme_llm", 8 * 3600)


def test_fields_in_any_order_are_read_by_name():
    lines = [
        "State|AllocTRES|End|Start|Account|JobIDRaw\n",
        "COMPLETED|gres/gpu=2|2024-11-13T10:00:00|2024-11-13T09:30:00|acme|7\n",
    ]
    (job,) = parse_sacct(lines, tz=OSLO)
    assert (job.account, job.job_id_raw, job.gpu_seconds) == ("acme", "7", 2 * 1800)


def test_parsable_output_with_a_trailing_separator_is_read():
    lines = [HEADER + "|\n", sacct_line().rstrip("\n") + "|\n"]
    (job,) = parse_sacct(lines, tz=OSLO)
    assert (job.job_name, job.gpu_seconds) == ("train", 8 * 3600)


def test_blank_lines_are_ignored_and_line_numbers_are_physical():
    lines = ["\n", HEADER + "\n", "\n", "  \n", sacct_line(), "\n", sacct_line(JobID="9.0")]
    results = list(parse_sacct(lines, tz=OSLO))
    assert [type(r) for r in results] == [JobRecord, StepSkipped]
    assert [r.line_no for r in results] == [5, 7]


def test_windows_line_ends_and_a_byte_order_mark_are_read():
    lines = ["\ufeff" + HEADER + "\r\n", sacct_line().replace("\n", "\r\n")]
    (job,) = parse_sacct(lines, tz=OSLO)
    assert (job.job_name, job.job_id) == ("train", "123")


def test_header_repeated_by_concatenated_dumps_is_not_a_job():
    results = parse(sacct_line(), HEADER + "\n", sacct_line(JobID="124", JobIDRaw="124"))
    assert [r.job_id for r in results] == ["123", "124"]


def test_header_line_is_skipped_when_fields_are_given_as_well():
    (job,) = parse_sacct([HEADER + "\n", sacct_line()], tz=OSLO, fields=HEADER.split("|"))
    assert job.line_no == 2


def test_empty_input_yields_nothing():
    assert list(parse_sacct([], tz=OSLO)) == []
    assert list(parse_sacct(["\n", HEADER + "\n"], tz=OSLO)) == []


# --- the real samples (shared/samples, read in place) ----------------------------------------


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES} (checkout without ../shared)")
    return SAMPLES


def read_sample(samples: Path, name: str, fields: str, tz: ZoneInfo = OSLO) -> list:
    with (samples / name).open(encoding="utf-8") as lines:
        return list(parse_sacct(lines, tz=tz, fields=fields))


def kinds(results: list) -> Counter:
    return Counter(type(result).__name__ for result in results)


def gpu_seconds_by_account(results: list) -> dict[str, int]:
    totals: Counter = Counter()
    for result in results:
        if isinstance(result, JobRecord):
            totals[result.account] += result.gpu_seconds
    return dict(totals)


def test_fox_sample_counts_each_allocation_once_and_skips_its_steps(samples):
    results = read_sample(samples, "sonar-fox-sacct.txt", FOX_FIELDS)
    # 96 lines: 29 allocations, 67 .batch/.extern/.0 steps
    assert kinds(results) == Counter(JobRecord=29, StepSkipped=67)


def test_fox_sample_gpu_seconds_per_account(samples):
    results = read_sample(samples, "sonar-fox-sacct.txt", FOX_FIELDS)
    # by hand, 1 GPU each x ElapsedRaw:
    # ec313 (gres/gpu=1): 974724 234 + 974725 256 + 974728 128 + 974729 160 + 974730 155
    #   + 974735 40 + 974737 29 + 974738 148 + 974739 29 + 974742 25 + 974746 23 + 974751 45
    #   = 1272
    # ec35 (gres/gpu:rtx30=1,gres/gpu=1): 974745 1389 + 974806 127 + 974819 13 = 1529
    # ec395 (gres/gpu:a100=1,gres/gpu=1): 974804 206; 974798 has no GPU
    # ec85, ec201, ec30: CPU only
    assert gpu_seconds_by_account(results) == {
        "ec85": 0,
        "ec201": 0,
        "ec313": 1272,
        "ec35": 1529,
        "ec395": 206,
        "ec30": 0,
    }


def test_fox_sample_typed_gpu_job_and_cancelled_jobs(samples):
    results = read_sample(samples, "sonar-fox-sacct.txt", FOX_FIELDS)
    jobs = {r.job_id: r for r in results if isinstance(r, JobRecord)}
    assert jobs["974804"].gpus == 1  # gres/gpu:a100=1,gres/gpu=1
    assert [jobs[j].state for j in ("974745", "974806", "974819")] == ["CANCELLED"] * 3
    assert jobs["974798"].state == "TIMEOUT"
    assert jobs["973997"].state == "FAILED"
    first = jobs["973821"]  # Oslo is UTC+1 in November
    assert (first.start, first.end) == (utc(2024, 11, 13, 10, 8), utc(2024, 11, 13, 12, 7, 24))
    assert first.job_key == "973821@2024-11-13T07:30:40Z"
    assert (first.user, first.partition, first.job_name, first.line_no) == (
        "ec-aaaaa",
        "normal",
        "command",
        1,
    )


def test_xdmod_sample_reads_elapsed_text_and_cancelled_by(samples):
    results = read_sample(samples, "xdmod-slurm-accounting-logs.log", XDMOD_FIELDS)
    assert kinds(results) == Counter(JobRecord=4)
    jobs = {r.job_id: r for r in results}
    assert jobs["4103947"].elapsed_seconds == 259200  # 3-00:00:00
    assert jobs["4107166"].elapsed_seconds == 252184  # 2-22:03:04
    assert jobs["4107166"].state == "CANCELLED"  # "CANCELLED by 102216"
    assert jobs["4107219"].elapsed_seconds == 50449  # 14:00:49
    assert (jobs["4103947"].nodes, jobs["4107166"].nodes) == (32, 3)
    gpu_only = jobs["5692623"]  # the GPU-only line: gres/gpu=2, no partition, Elapsed 0
    assert (gpu_only.gpus, gpu_only.partition, gpu_only.elapsed_seconds) == (2, "", 0)
    # no line has both GPUs and elapsed time: 0 GPU-seconds for every account
    assert gpu_seconds_by_account(results) == {
        "anon": 0,
        "dspumpkins": 0,
        "anonacct": 0,
        "ccr": 0,
    }


def test_xdmod_sample_running_and_pending_jobs(samples):
    running, pending = read_sample(samples, "xdmod-slurm-non-ended-job-state.log", XDMOD_FIELDS)
    assert (running.state, running.running, running.end) == ("RUNNING", True, None)
    assert running.elapsed_seconds == 81142  # 22:32:22 so far
    assert running.job_key == "3451067@2020-06-24T13:06:34Z"  # Oslo is UTC+2 in June
    assert (pending.state, pending.running, pending.start, pending.end) == (
        "PENDING",
        True,
        None,
        None,
    )
    assert (pending.elapsed_seconds, pending.gpus, pending.gpu_seconds) == (0, 0, 0)


def test_xdmod_sample_unknown_states_are_kept(samples):
    foo, bar = read_sample(samples, "xdmod-slurm-unknown-job-state.log", XDMOD_FIELDS)
    assert (foo.state, foo.running, foo.elapsed_seconds) == ("FOO", False, 81142)
    assert (bar.state, bar.start, bar.elapsed_seconds) == ("BAR", None, 0)


def test_xdmod_sample_multibyte_job_name(samples):
    (job,) = read_sample(samples, "xdmod-slurm-utf8-multibyte-chars.log", XDMOD_FIELDS)
    assert job.job_name == "a\u00e0b"
    assert job.job_name.encode() == b"a\xc3\xa0b"
    assert (job.state, job.elapsed_seconds, job.nodes) == ("TIMEOUT", 259200, 1)


# --- PBS / TORQUE ----------------------------------------------------------------------------

BUFFALO = ZoneInfo("America/New_York")


def read_pbs(samples: Path) -> list:
    with (samples / "xdmod-pbs-accounting-logs.log").open(encoding="utf-8") as lines:
        return list(parse_pbs(lines, tz=BUFFALO))


def test_pbs_sample_has_nine_job_ends(samples):
    assert kinds(read_pbs(samples)) == Counter(JobRecord=9)


def test_pbs_sample_gpu_seconds_per_job(samples):
    jobs = read_pbs(samples)
    # by hand:
    # 7904     Resource_List.nodes=1:ppn=28:gpus=1, no walltime: end - start
    #          1485459831 - 1485451424 = 8407 s -> 1 x 8407 = 8407
    # 10711    nodect=1:ppn=24:gpu=4:..., walltime 02:20:07 = 8407 s -> 4 x 8407 = 33628
    # 10712    Resource_List.gpu=2 is no standard resource and nodes has no gpus= -> 0
    # 3073070  Resource_List.ngpus=4, walltime 10:01:06 = 36066 s -> 4 x 36066 = 144264
    # the other five name no GPU -> 0
    assert {job.job_id: job.gpu_seconds for job in jobs if job.gpu_seconds} == {
        "7904": 8407,
        "10711": 33628,
        "3073070": 144264,
    }
    assert sum(job.gpu_seconds for job in jobs) == 186299


def test_pbs_sample_accounts_fall_back_to_project_then_group(samples):
    accounts = [job.account for job in read_pbs(samples)]
    assert accounts == [
        "ccrstaff",  # no account: group
        "ccrstaff",
        "anonaccount",  # account=
        "anongroup",  # project=_pbs_project_default names no one: group
        "anongroup",
        "caste",
        "caste",
        "caste",
        "[project1]",  # PBS Pro project=
    ]


def test_pbs_sample_figures_of_one_torque_job(samples):
    job = read_pbs(samples)[0]
    assert (job.job_id, job.job_id_raw) == ("6", "6.edge.ccr.buffalo.edu")
    assert job.job_key == "6@1261425023"
    assert (job.user, job.partition, job.job_name) == ("jonesm", "ccr", "impi-hybrid")
    assert (job.nodes, job.gpus, job.elapsed_seconds) == (4, 0, 2197)  # walltime 00:36:37
    assert job.submit == datetime.fromtimestamp(1261424924, UTC)  # qtime
    assert (job.start, job.end) == (
        datetime.fromtimestamp(1261425023, UTC),
        datetime.fromtimestamp(1261427220, UTC),
    )
    assert (job.state, job.running, job.energy_joules) == ("COMPLETED", False, None)


def test_pbs_sample_same_job_logged_with_and_without_server_has_one_key(samples):
    with_server, without_server = read_pbs(samples)[:2]
    assert with_server.job_key == without_server.job_key


def test_pbs_sample_exit_status_decides_completed_or_failed(samples):
    states = {job.job_id: job.state for job in read_pbs(samples)}
    assert states["6464684"] == "FAILED"  # Exit_status=1
    assert states["3073070"] == "FAILED"  # Exit_status=271
    assert states["2994"] == "COMPLETED"  # Exit_status=0


def test_pbs_records_other_than_job_end_are_skipped():
    lines = [
        "11/09/2014 10:00:00;Q;77.server;queue=gpu\n",
        "11/09/2014 10:01:00;S;77.server;user=u group=g queue=gpu start=1415545260\n",
        "11/09/2014 10:02:00;D;78.server;requestor=u@host\n",
    ]
    assert list(parse_pbs(lines, tz=BUFFALO)) == [StepSkipped(1), StepSkipped(2), StepSkipped(3)]


def test_pbs_end_without_end_time_ends_when_it_was_logged():
    line = (
        "11/09/2014 10:30:00;E;77.server;user=u group=g account=acme queue=gpu start=1415545260"
        " Resource_List.ngpus=2 resources_used.walltime=00:29:00\n"
    )
    (job,) = parse_pbs([line], tz=BUFFALO)
    assert job.end == utc(2014, 11, 9, 15, 30)  # 10:30 EST
    assert (job.gpus, job.elapsed_seconds, job.account) == (2, 29 * 60, "acme")


def test_pbs_value_with_spaces_in_quotes_is_read_whole():
    line = '01/01/2024 00:00:00;E;5.s;user=u account=acme jobname="my first job" queue=q start=1\n'
    (job,) = parse_pbs([line], tz=BUFFALO)
    assert (job.job_name, job.partition) == ("my first job", "q")


def test_pbs_line_that_is_no_record_or_has_bad_numbers_is_rejected():
    lines = [
        "this is not a record\n",
        "01/01/2024 00:00:00;E;5.s;user=u account=acme start=soon\n",
        "01/01/2024 00:00:00;E;6.s;user=u start=1 end=2\n",
    ]
    reasons = [result.reason for result in parse_pbs(lines, tz=BUFFALO)]
    assert reasons[0].startswith("The line is not a PBS accounting record")
    assert reasons[1] == "start 'soon' is not a time in seconds since 1970."
    assert reasons[2] == "Job 6 has no account, project or group."


def test_pbs_torque_gpus_are_per_node_in_the_nodes_spec():
    line = (
        "01/01/2024 01:00:00;E;8.s;user=u account=acme queue=gpu start=1704067200"
        " end=1704070800 Resource_List.nodes=2:ppn=8:gpus=4+gpu17:ppn=8:gpus=2\n"
    )
    (job,) = parse_pbs([line], tz=BUFFALO)
    # 2 nodes x 4 GPUs + 1 named node x 2 GPUs, for end - start = 3600 s
    assert (job.nodes, job.gpus, job.gpu_seconds) == (3, 10, 10 * 3600)


# --- account names ---------------------------------------------------------------------------


def fixture_lines(name: str) -> list[str]:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as lines:
        return list(lines)


@pytest.mark.parametrize(
    "account", ["ec110-guest", "ai.lab_2", "_shared", "2024ai", "SCSG0001", "ærø-lab", "a"]
)
def test_every_account_name_a_scheduler_accepts_is_kept_as_printed(account):
    assert account_problem(account) is None
    assert only_job(sacct_line(Account=account)).account == account


def test_account_key_matches_slurms_lower_case_with_the_name_as_granted():
    # sacct(1): "The contents of Slurm's database are maintained in lower case"
    assert account_key("SCSG0001") == account_key("scsg0001") == "scsg0001"
    assert only_job(sacct_line(Account="Ec110-Guest")).account_key == "ec110-guest"


@pytest.mark.parametrize(
    ("account", "what"),
    [
        ("acme llm", "whitespace"),
        ("acme\tllm", "whitespace"),
        ("acme\u00a0llm", "whitespace"),
        ("acme\x1bllm", "a control character"),
        ("acme\u200bllm", "a control character"),
    ],
)
def test_account_with_whitespace_or_control_characters_is_rejected_saying_which(account, what):
    rejected = only_rejection(sacct_line(Account=account))
    assert rejected.line_no == 2
    assert rejected.reason == f"Job 123 has an account with {what} in it: {account!r}."


def test_only_the_bad_account_line_is_rejected():
    results = parse(sacct_line(Account="a b"), sacct_line(JobID="124", JobIDRaw="124"))
    assert [type(result) for result in results] == [Rejected, JobRecord]


# --- GPUs: TRES, GRES, requests, no GPU field ------------------------------------------------


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("gpu:2", 2),
        ("gpu:tesla:2", 2),
        ("gpu:2(IDX:0-1)", 2),
        ("gpu:tesla:3(IDX:0,2-3)", 3),  # the index list holds a comma of its own
        ("gpu:tesla:2,gpu:2", 2),  # the untyped total, the typed entry not added to it
        ("gpu:k80:2,gpu:p100:1", 3),
        ("gres:gpu:4", 4),
        ("gpu", 1),
        ("mps:100,gpu:1", 1),
        ("mps:100", 0),
        ("", 0),
    ],
)
def test_gres_strings_of_older_slurm_give_the_gpu_count(gres, gpus):
    assert parse_alloc_gres_gpus(gres) == gpus


def test_header_without_alloctres_is_read_from_allocgres():
    lines = [
        "JobID|Account|State|Start|End|AllocGRES\n",
        "7|chem|COMPLETED|2017-03-01T10:00:00|2017-03-01T11:00:00|gpu:2(IDX:0-1)\n",
    ]
    (job,) = parse_sacct(lines, tz=UTC)
    assert (job.gpus, job.gpu_seconds, job.no_gpu_field) == (2, 2 * 3600, False)


def test_header_with_neither_alloctres_nor_allocgres_is_refused_naming_both():
    with pytest.raises(AccountingFormatError, match="AllocTRES or AllocGRES"):
        list(parse_sacct(["JobID|Account|State|Start|End|ReqTRES\n"], tz=UTC))


def test_allocgres_sample_of_a_site_without_gpus_in_its_tres():
    results = list(parse_sacct(fixture_lines("sacct-allocgres.txt"), tz=UTC))
    assert results[-1] == StepSkipped(line_no=7)
    jobs = {job.job_id: job for job in results[:-1]}
    # AllocTRES lists CPUs and memory only: AccountingStorageTRES did not track gres/gpu
    assert (jobs["812"].gpus, jobs["812"].gpu_seconds) == (2, 2 * 7200)
    assert (jobs["813"].gpus, jobs["813"].gpu_types) == (4, (("k80", 4),))
    assert (jobs["814"].gpus, jobs["814"].elapsed_seconds) == (3, 600)  # Elapsed 10:00
    pending = jobs["815"]  # never ran: what it asked for, ReqGRES gpu:2
    assert (pending.gpus, pending.gpu_seconds, pending.no_gpu_field) == (2, 0, False)
    cpu_job = jobs["816"]  # AllocTRES says what it had, and no GPU is among it
    assert (cpu_job.gpus, cpu_job.no_gpu_field) == (0, False)


REQ_HEADER = "JobID|Account|State|Start|End|ElapsedRaw|ReqTRES|AllocTRES\n"


def test_pending_job_takes_its_gpus_from_what_it_requested():
    line = "8|acme|PENDING|Unknown|Unknown|0|billing=4,cpu=4,gres/gpu=4,node=1|\n"
    (job,) = parse_sacct([REQ_HEADER, line], tz=UTC)
    assert (job.gpus, job.gpu_seconds, job.no_gpu_field) == (4, 0, False)


def test_job_cancelled_before_it_started_takes_its_gpus_from_what_it_requested():
    # Slurm sets Start to the cancel time of a job cancelled while pending, with no time elapsed
    line = "9|acme|CANCELLED by 1000|2024-11-13T09:00:00|2024-11-13T09:00:00|0|gres/gpu=2|\n"
    (job,) = parse_sacct([REQ_HEADER, line], tz=UTC)
    assert (job.state, job.gpus, job.gpu_seconds) == ("CANCELLED", 2, 0)


def test_job_that_ran_is_not_given_the_gpus_it_requested():
    line = "10|acme|COMPLETED|2024-11-13T09:00:00|2024-11-13T10:00:00|3600|gres/gpu=2|\n"
    (job,) = parse_sacct([REQ_HEADER, line], tz=UTC)
    assert (job.gpus, job.gpu_seconds, job.no_gpu_field) == (0, 0, True)


def test_allocation_wins_over_the_request():
    line = "11|acme|COMPLETED|2024-11-13T09:00:00|2024-11-13T10:00:00|3600|gres/gpu=2|gres/gpu=4\n"
    (job,) = parse_sacct([REQ_HEADER, line], tz=UTC)
    assert job.gpus == 4


def test_line_without_any_gpu_field_has_zero_gpus_and_says_so():
    job = only_job(sacct_line(AllocTRES=""))
    assert (job.gpus, job.gpu_seconds, job.no_gpu_field) == (0, 0, True)


def test_cpu_job_whose_tres_names_no_gpu_has_a_gpu_field():
    job = only_job(sacct_line(AllocTRES="billing=6,cpu=6,mem=10000M,node=1"))
    assert (job.gpus, job.no_gpu_field, job.gpu_types) == (0, False, ())


def test_typed_entries_are_kept_on_the_record():
    job = only_job(sacct_line(AllocTRES="cpu=8,gres/gpu:a100=2,gres/gpu:v100=1,node=1"))
    assert (job.gpus, job.gpu_types) == (3, (("a100", 2), ("v100", 1)))
    job = only_job(sacct_line(AllocTRES="billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1,node=1"))
    assert (job.gpus, job.gpu_types) == (1, (("a100", 1),))


def test_gpu_count_over_the_ceiling_is_rejected_with_its_line_number():
    results = parse(
        sacct_line(AllocTRES=f"cpu=1,gres/gpu={GPU_CEILING + 1},node=1"),
        sacct_line(JobID="124", JobIDRaw="124", AllocTRES=f"gres/gpu={GPU_CEILING}"),
    )
    assert results[0].line_no == 2
    assert (
        results[0].reason
        == f"Job 123 has 4,097 GPUs, more than the {GPU_CEILING:,} any job can hold."
    )
    assert results[1].gpus == GPU_CEILING


def test_gpu_count_past_64_bits_is_rejected_not_raised():
    rejected = only_rejection(sacct_line(AllocTRES="gres/gpu=99999999999999999999999"))
    assert rejected.reason.startswith("AllocTRES 'gres/gpu=99999999999999999999999'")
    assert "out of range" in rejected.reason


# --- GPUs: MIG slices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu_type", "profile"),
    [
        ("1g.10gb", "1g.10gb"),
        ("3g.40gb", "3g.40gb"),
        ("1g.10gb+me", "1g.10gb+me"),
        ("a100_2g.20gb", "2g.20gb"),
        ("nvidia_a100-sxm4-80gb_3g.40gb", "3g.40gb"),
        ("1c.3g.40gb", "1c.3g.40gb"),
        ("7G.80GB", "7g.80gb"),
        ("a100", None),
        ("h100", None),
        ("rtx30", None),
        ("a100-80gb", None),
    ],
)
def test_mig_slice_types_are_told_from_whole_cards_by_their_profile_name(gpu_type, profile):
    assert mig_profile(gpu_type) == profile


def test_seven_1g_slices_are_one_gpu_not_seven_nor_fourteen():
    tres = "billing=7,cpu=7,gres/gpu:1g.10gb=7,gres/gpu=7,mem=56G,node=1"
    assert parse_alloc_tres_gpus(tres) == 0  # no whole GPU
    job = only_job(sacct_line(AllocTRES=tres))
    assert (job.gpus, job.gpu_types, job.gpu_slices) == (0, (("1g.10gb", 7),), 7)
    assert job.gpu_share() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("typed", "untyped", "share"),
    [
        ({"1g.10gb": 7}, 7, 1.0),
        ({"1g.10gb": 1}, 1, 1 / 7),
        ({"3g.40gb": 2}, 2, 6 / 7),
        ({"4g.40gb": 1, "3g.40gb": 1}, 2, 1.0),
        ({"7g.80gb": 1}, 1, 1.0),
        ({"a100_2g.20gb": 1}, None, 2 / 7),  # no untyped total listed
        ({"a100": 1, "2g.20gb": 1}, 2, 1 + 2 / 7),
        ({"a100": 2}, None, 2.0),
        ({"a100": 1}, 1, 1.0),
        ({}, 4, 4.0),
        ({}, None, 0.0),
    ],
)
def test_gpu_equivalents_count_slices_by_their_share_and_whole_cards_once(typed, untyped, share):
    assert gpu_equivalents(typed, untyped, MIG_PROFILES) == pytest.approx(share)
    assert gpu_equivalents(list(typed.items()), untyped) == pytest.approx(share)


def test_a_partitions_own_slice_profiles_replace_the_a100_table():
    a30 = {"1g": 1 / 4, "2g": 2 / 4, "4g": 1.0}  # an A30 has four compute slices
    assert gpu_equivalents({"1g.6gb": 3}, 3, a30) == pytest.approx(0.75)
    exact = {"1g.10gb": 0.1, "1g": 1 / 7}  # a full profile name wins over its compute part
    assert gpu_equivalents({"1g.10gb": 2, "1g.20gb": 1}, 3, exact) == pytest.approx(0.2 + 1 / 7)


@pytest.mark.parametrize(
    ("typed", "profiles", "named"),
    [
        ({"1c.3g.40gb": 1}, None, "'1c.3g.40gb'"),
        ({"a100_5g.50gb": 1}, None, "'5g.50gb'"),
        ({"2g.12gb": 1}, {"1g": 0.25}, "'2g.12gb'"),
    ],
)
def test_unknown_slice_profile_is_an_error_that_names_it(typed, profiles, named):
    with pytest.raises(UnknownSliceProfile, match=named):
        gpu_equivalents(typed, 1, profiles)


def test_mig_sample_keeps_slices_apart_for_the_partition_to_weigh():
    jobs = {job.job_id: job for job in parse_sacct(fixture_lines("sacct-mig.txt"), tz=UTC)}
    assert {job_id: job.gpus for job_id, job in jobs.items()} == {
        "5000001": 0,
        "5000002": 0,
        "5000003": 0,
        "5000004": 1,  # a whole A100 next to a 2g slice
        "5000005": 0,
        "5000006": 0,
    }
    shares = {job_id: job.gpu_share() for job_id, job in jobs.items() if job_id != "5000006"}
    assert shares == pytest.approx(
        {"5000001": 1 / 7, "5000002": 1.0, "5000003": 6 / 7, "5000004": 1 + 2 / 7, "5000005": 2 / 7}
    )
    assert jobs["5000005"].gpu_types == (("1g.10gb", 2),)  # pending: from ReqTRES
    with pytest.raises(UnknownSliceProfile, match="1c.3g.40gb"):
        jobs["5000006"].gpu_share()
    assert jobs["5000006"].gpu_share({"1c.3g": 1 / 7}) == pytest.approx(1 / 7)


# --- delimiters and the header ---------------------------------------------------------------


def test_multibyte_delimiter_of_sacct_parsable_is_read_from_the_header():
    # sacct -p --delimiter=☃: the header and every line end with the delimiter
    results = list(parse_sacct(fixture_lines("sacct-snowman-parsable.txt"), tz=UTC))
    assert [type(result) for result in results] == [
        JobRecord,
        StepSkipped,
        StepSkipped,
        JobRecord,
        JobRecord,
    ]
    first, _, _, cancelled, timeout = results
    assert (first.account, first.job_name, first.gpus) == ("ec110-guest", "train.py", 2)
    assert (cancelled.account, cancelled.job_name, cancelled.state) == (
        "2024ai",
        "eval|ablation",  # a | in a job name is data under another delimiter
        "CANCELLED",
    )
    assert (timeout.account, timeout.gpu_seconds, timeout.nodes) == ("ai.lab_2", 8 * 14400, 2)


def test_given_delimiter_reads_the_same_as_a_detected_one():
    lines = fixture_lines("sacct-snowman-parsable.txt")
    assert list(parse_sacct(lines, tz=UTC, delimiter="☃")) == list(parse_sacct(lines, tz=UTC))


@pytest.mark.parametrize("delimiter", [";", "\t", "<>", "☃☃"])
def test_any_delimiter_with_and_without_a_trailing_one(delimiter):
    header = HEADER.replace("|", delimiter)
    line = sacct_line(JobName="eval.v2").rstrip("\n").replace("|", delimiter)
    for trailing in ("", delimiter):
        lines = [header + trailing + "\n", line + trailing + "\n"]
        (job,) = parse_sacct(lines, tz=OSLO, delimiter=delimiter)
        assert (job.job_name, job.gpu_seconds) == ("eval.v2", 8 * 3600)
        (detected,) = parse_sacct(lines, tz=OSLO)
        assert detected == job


def test_step_detection_reads_the_job_id_field_only_under_another_delimiter():
    # with --fields and a delimiter that is not |, a dot elsewhere in the line made it a step
    fields = HEADER.replace("|", ",")
    job = sacct_line(JobName="train.py", AllocTRES="cpu=1,gres/gpu=1,mem=1.5G").replace("|", ";")
    step = sacct_line(JobID="123.batch", JobIDRaw="123.batch").replace("|", ";")
    results = list(parse_sacct([job, step], tz=OSLO, fields=fields, delimiter=";"))
    assert [type(result) for result in results] == [JobRecord, StepSkipped]
    assert results[0].job_name == "train.py"


def test_step_detection_with_the_job_id_in_the_last_field():
    lines = ["Account;State;Start;End;AllocTRES;JobID\n", "a;COMPLETED;x;y;z;77.batch\n"]
    assert list(parse_sacct(lines, tz=OSLO, delimiter=";")) == [StepSkipped(line_no=2)]
    lines = ["Account;State;Start;End;AllocTRES;JobID;\n", "a;COMPLETED;x;y;z;77.batch;\n"]
    assert list(parse_sacct(lines, tz=OSLO, delimiter=";")) == [StepSkipped(line_no=2)]


def test_line_the_delimiter_does_not_split_is_rejected_not_taken_for_a_step():
    # data printed with ; read as |: the dots in the job name must not make it a step
    line = sacct_line(JobName="train.py").replace("|", ";")
    (rejected,) = parse_sacct([line], tz=OSLO, fields=HEADER.split("|"))
    assert rejected.reason == (
        "The line has 1 fields but --fields names 14. Are its fields separated by '|'"
        " (sacct --delimiter)?"
    )


@pytest.mark.parametrize("delimiter", ["", "\n", "|\r"])
def test_empty_or_line_breaking_delimiter_is_refused_at_once(delimiter):
    with pytest.raises(AccountingFormatError, match="delimiter"):
        parse_sacct([], tz=OSLO, delimiter=delimiter)


def test_header_that_the_delimiter_does_not_split_says_to_give_the_delimiter():
    header = HEADER.replace("|", "XX")  # letters: not told apart from the names
    with pytest.raises(AccountingFormatError, match="give the delimiter passed to sacct"):
        list(parse_sacct([header + "\n"], tz=OSLO))
    (job,) = parse_sacct([header + "\n", sacct_line().replace("|", "XX")], tz=OSLO, delimiter="XX")
    assert job.gpus == 8


# --- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-13T11:08:00", utc(2024, 11, 13, 10, 8)),  # standard: local, CET
        ("2024-11-13 11:08:00", utc(2024, 11, 13, 10, 8)),  # without the T
        ("2024-11-13T11:08:00.250", utc(2024, 11, 13, 10, 8, 0, 250000)),
        ("2024-11-13T11:08:00+02:00", utc(2024, 11, 13, 9, 8)),
        ("2024-11-13T11:08:00.5Z", utc(2024, 11, 13, 11, 8, 0, 500000)),
        ("1731492480", utc(2024, 11, 13, 10, 8)),  # SLURM_TIME_FORMAT=%s: absolute
    ],
)
def test_every_time_that_slurm_time_format_standard_or_epoch_gives_is_read(text, expected):
    assert parse_time(text, OSLO) == expected


@pytest.mark.parametrize(
    ("time_format", "text", "expected"),
    [
        ("%Y/%m/%d-%H:%M:%S", "2024/11/13-11:08:00", utc(2024, 11, 13, 10, 8)),
        ("%F %T", "2024-11-13 11:08:00", utc(2024, 11, 13, 10, 8)),
        ("%d %b %Y %H:%M", "13 Nov 2024 11:08", utc(2024, 11, 13, 10, 8)),
        ("%D %R", "11/13/24 11:08", utc(2024, 11, 13, 10, 8)),
        ("%Y%m%d%H%M%S%z", "20241113110800+0000", utc(2024, 11, 13, 11, 8)),
        ("%s", "1731492480", utc(2024, 11, 13, 10, 8)),
        ("standard", "2024-11-13T11:08:00", utc(2024, 11, 13, 10, 8)),
        ("100%% %Y-%m-%d %H:%M", "100% 2024-11-13 11:08", utc(2024, 11, 13, 10, 8)),
    ],
)
def test_time_in_a_strftime_pattern_is_read_with_that_pattern(time_format, text, expected):
    assert parse_time(text, OSLO, time_format) == expected
    assert parse_time("Unknown", OSLO, time_format) is None


@pytest.mark.parametrize(
    ("time_format", "says"),
    [
        ("relative", "relative"),
        ("%a %T", "full date and time"),
        ("%H:%M:%S", "full date and time"),
        ("%Y-%m-%d", "full date and time"),
        ("%Y-%m-%d %Q", "%Q"),
    ],
)
def test_time_format_that_cannot_be_read_back_is_refused_at_once(time_format, says):
    with pytest.raises(AccountingFormatError, match=re.escape(says)):
        parse_sacct([], tz=OSLO, time_format=time_format)


def test_epoch_times_give_the_same_record_and_key_as_iso_times():
    epoch = {job.job_id: job for job in parse_sacct(fixture_lines("sacct-epoch.txt"), tz=OSLO)}
    iso_lines = [
        "JobID|JobIDRaw|Account|State|Submit|Start|End|ElapsedRaw|AllocTRES\n",
        "900|900|acme_llm|COMPLETED|2024-11-13T08:00:00|2024-11-13T08:05:00|"
        "2024-11-13T09:05:00|3600|billing=32,cpu=32,gres/gpu=4,node=1\n",
    ]
    (iso,) = parse_sacct(iso_lines, tz=ZoneInfo("UTC"))
    assert epoch["900"]._replace(line_no=0) == iso._replace(line_no=0)
    assert epoch["900"].job_key == "900@2024-11-13T08:00:00Z"
    assert (epoch["901"].running, epoch["901"].end, epoch["901"].gpu_seconds) == (True, None, 4800)
    assert (epoch["902"].start, epoch["902"].no_gpu_field) == (None, True)


def test_sacct_lines_in_a_strftime_pattern_keep_the_key_of_the_standard_format():
    pattern = "%Y/%m/%d-%H:%M:%S"
    line = sacct_line(
        Submit="2024/11/13-08:00:00", Start="2024/11/13-09:00:00", End="2024/11/13-10:00:00"
    )
    (job,) = parse_sacct([HEADER + "\n", line], tz=OSLO, time_format=pattern)
    assert job == only_job(sacct_line())


@pytest.mark.parametrize(
    ("time_format", "text"),
    [
        ("%Y/%m/%d-%H:%M:%S", "2024/11/13-11:08:00"),
        ("%d.%m.%Y %T", "13.11.2024 11:08:09"),
        ("%Y/%m/%d-%H:%M:%S", "2024/1/3-8:05:09"),  # unpadded, as strptime takes it
        ("%F_%R", "2024-03-31_02:30"),  # the hour Oslo skips in spring
        ("%Y-%m-%d %H:%M", "2024-10-27 02:30"),  # the hour Oslo has twice in autumn
        ("%d %b %Y %H:%M", "13 Nov 2024 11:08"),
        ("%Y%m%d%H%M%S%z", "20241113110800+0100"),
        ("%s", "1731492480"),
    ],
)
def test_sacct_reads_a_pattern_as_parse_time_does(time_format, text):
    line = sacct_line(Submit=text, Start=text, End="Unknown", State="RUNNING")
    (job,) = parse_sacct([HEADER + "\n", line], tz=OSLO, time_format=time_format)
    expected = parse_time(text, OSLO, time_format)
    assert (job.submit, job.start) == (expected, expected)
    assert job.job_key == f"123@{expected:%Y-%m-%dT%H:%M:%S}Z"


def test_time_not_in_the_given_pattern_is_rejected_naming_the_pattern():
    line = sacct_line(Start="2024-11-13T09:00:00")
    (rejected,) = parse_sacct([HEADER + "\n", line], tz=OSLO, time_format="%Y/%m/%d-%H:%M:%S")
    assert rejected.reason == (
        "Submit '2024-11-13T08:00:00' is not a date and time in the format '%Y/%m/%d-%H:%M:%S'."
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1-02:03:04.500000", 93784), ("00:00:59.999", 59), ("59:59", 3599), ("240:00:00", 864000)],
)
def test_elapsed_with_microseconds_and_long_hours(text, seconds):
    assert parse_elapsed(text) == seconds


# --- robustness: one bad line is one rejection -----------------------------------------------


def test_damaged_lines_are_each_rejected_with_their_number_and_the_rest_is_read():
    good = sacct_line()
    lines = [
        HEADER + "\n",
        good,
        "\x00" * 40 + sacct_line(JobID="124", JobIDRaw="124"),  # a zero-filled block
        sacct_line(JobID="125", JobIDRaw="125", JobName="a\x00b"),
        sacct_line(JobID="126", JobIDRaw="126", ElapsedRaw="99999999999999999999"),
        sacct_line(JobID="127", JobIDRaw="127", ElapsedRaw=str(ELAPSED_LIMIT_SECONDS + 1)),
        sacct_line(JobID="128", JobIDRaw="128", ElapsedRaw="9" * 5000),
        sacct_line(JobID="129", JobIDRaw="129", NNodes="9" * 5000),
        sacct_line(JobID="130", JobIDRaw="130", NNodes="18446744073709551616"),
        sacct_line(JobID="131", JobIDRaw="131", AllocTRES="gres/gpu=" + "9" * 5000),
        sacct_line(JobID="132", JobIDRaw="132", Start="9" * 40),
        sacct_line(JobID="133", JobIDRaw="133", End="\x1b[32m2024-11-13T10:00:00\x1b[0m"),
        good.replace("123", "134"),
    ]
    results = list(parse_sacct(lines, tz=UTC))
    assert [type(result).__name__ for result in results] == ["JobRecord"] + ["Rejected"] * 10 + [
        "JobRecord"
    ]
    reasons = {result.line_no: result.reason for result in results if type(result) is Rejected}
    assert reasons[3] == reasons[4] == "The line holds NUL bytes: the file is damaged here."
    assert reasons[5].startswith("Job 126 has ElapsedRaw '99999999999999999999', more than ten")
    assert reasons[6].startswith(f"Job 127 has ElapsedRaw '{ELAPSED_LIMIT_SECONDS + 1}'")
    assert reasons[7].startswith("Job 128 has ElapsedRaw '9999999999")
    assert reasons[8].startswith("NNodes '9999999999")
    assert reasons[8].endswith("is out of range (more than 1,000,000).")
    assert reasons[9] == "NNodes '18446744073709551616' is out of range (more than 1,000,000)."
    assert "out of range" in reasons[10]
    assert reasons[11].startswith("Start '9999999999")
    assert reasons[12] == "End '\\x1b[32m2024-11-13T10:00:00\\x1b[0m' is not a date and time."
    assert all(len(result.text) <= 500 for result in results if type(result) is Rejected)


def test_elapsed_of_more_than_ten_years_is_rejected_but_ten_years_is_read():
    assert only_job(sacct_line(ElapsedRaw=str(ELAPSED_LIMIT_SECONDS))).elapsed_seconds == (
        ELAPSED_LIMIT_SECONDS
    )
    lines = [
        "JobID|Account|State|Start|End|Elapsed|AllocTRES\n",
        "9|a|COMPLETED|2015-06-28T02:55:50|2015-07-01T02:55:50|4000-00:00:00|gres/gpu=4\n",
    ]
    (rejected,) = parse_sacct(lines, tz=UTC)
    assert rejected.reason == (
        "Job 9 has Elapsed '4000-00:00:00', more than ten years: not a real run time."
    )


def test_energy_past_64_bits_is_no_reading():
    job = only_job(sacct_line(ConsumedEnergyRaw="9" * 30))
    assert job.energy_joules is None


def test_line_over_the_length_limit_is_rejected_unread_and_the_next_is_read():
    long_line = sacct_line(JobName="x" * 300)
    results = list(
        parse_sacct([HEADER + "\n", long_line, sacct_line()], tz=OSLO, max_line_length=200)
    )
    assert type(results[0]) is Rejected
    assert results[0].line_no == 2
    assert results[0].reason == (
        f"The line is {len(long_line):,} characters long, over the limit of 200."
    )
    assert results[1].line_no == 3


def test_default_length_limit_is_a_megabyte_of_text():
    assert LINE_LENGTH_LIMIT == 1_000_000
    (rejected,) = parse(sacct_line(JobName="x" * LINE_LENGTH_LIMIT))
    assert rejected.reason.endswith(f"over the limit of {LINE_LENGTH_LIMIT:,}.")


def test_five_megabyte_line_is_split_and_read_correctly():
    # A single pass per line keeps this linear; the test checks what is read, not how fast.
    name = "n" * 2_500_000
    tres = "gres/gpu=2," + ",".join(f"license/l{n}=1" for n in range(250_000))
    line = sacct_line(JobName=name, AllocTRES=tres, NNodes="")
    assert len(line) > 5_000_000
    (job,) = parse_sacct([HEADER + "\n", line], tz=OSLO, max_line_length=10_000_000)
    assert (job.job_name, job.gpus, job.elapsed_seconds) == (name, 2, 3600)


def test_five_megabyte_pbs_line_with_a_long_quoted_value_is_read_correctly():
    words = " ".join(["word"] * 1_000_000)
    line = (
        f'01/01/2024 00:00:00;E;5.s;user=u account=acme jobname="{words}" queue=q start=1'
        " Resource_List.ngpus=2\n"
    )
    assert len(line) > 5_000_000
    (job,) = parse_pbs([line], tz=UTC, max_line_length=10_000_000)
    assert (job.job_name, job.partition, job.gpus) == (words, "q", 2)


# --- PBS Pro and TORQUE ----------------------------------------------------------------------


def test_pbs_pro_rerun_counts_the_cut_short_run_once_beside_the_final_run():
    results = list(parse_pbs(fixture_lines("pbspro-rerun.log"), tz=UTC))
    runs = [result for result in results if type(result) is JobRecord and result.job_id == "4242"]
    rerun, final = runs
    assert (rerun.state, rerun.line_no, final.state, final.line_no) == (
        "REQUEUED",
        3,
        "COMPLETED",
        5,
    )
    assert (rerun.elapsed_seconds, rerun.gpus, rerun.gpu_seconds) == (3600, 8, 8 * 3600)
    assert (final.elapsed_seconds, final.gpus, final.gpu_seconds) == (7200, 8, 8 * 7200)
    assert rerun.job_key == "4242@1731484805/R"
    assert final.job_key == "4242@1731488700"
    assert (rerun.account, rerun.running, rerun.end) == (
        "SCSG0001",
        False,
        utc(2024, 11, 13, 9, 0, 5),
    )
    assert [type(result) for result in results[:5]] == [
        StepSkipped,  # Q
        StepSkipped,  # S
        JobRecord,  # R
        StepSkipped,  # S of the second run
        JobRecord,  # E
    ]


def test_pbs_rerun_record_twice_in_overlapping_logs_has_one_key():
    lines = fixture_lines("pbspro-rerun.log")
    first = list(parse_pbs(lines[:3], tz=UTC))[-1]
    again = list(parse_pbs(lines, tz=UTC))[2]
    assert first.job_key == again.job_key


def test_rerun_record_without_the_run_in_it_is_skipped():
    results = list(parse_pbs(fixture_lines("torque-gpus.log"), tz=UTC))
    assert results[-1] == StepSkipped(line_no=4)  # TORQUE's R with the requestor only


def test_pbs_gpus_from_select_chunks_exec_vnode_or_nothing():
    jobs = {
        job.job_id: job
        for job in parse_pbs(fixture_lines("pbspro-rerun.log"), tz=UTC)
        if type(job) is JobRecord
    }
    assert jobs["4250"].gpus == 10  # select=2:ncpus=64:ngpus=4+1:ncpus=8:ngpus=2
    assert jobs["4251"].gpus == 8  # exec_vnode=(gpu08:...:ngpus=4)+(gpu09:...:ngpus=4)
    assert (jobs["4252"].gpus, jobs["4252"].no_gpu_field) == (0, False)  # select, no ngpus
    assert (jobs["4253"].gpus, jobs["4253"].no_gpu_field) == (0, True)  # no GPU resource at all
    assert (jobs["4250"].account, jobs["4250"].job_name) == ("SCSG0001", "multi chunk")
    assert jobs["4251"].account == "ec110-guest"
    assert jobs["4252"].account == "cpuonly"  # the default project names no one: the group
    assert jobs["4253"].account == "ai.lab_2"


@pytest.mark.parametrize(
    ("resources", "gpus"),
    [
        ("Resource_List.ngpus=4 Resource_List.select=2:ngpus=4", 4),  # the total wins
        ("Resource_List.select=2:ncpus=64:ngpus=4+1:ngpus=2", 10),
        ("Resource_List.select=ngpus=2:ncpus=8", 2),  # a chunk count of one left out
        ("exec_vnode=(n1:ncpus=64:ngpus=4)+(n2:ncpus=64:ngpus=4)", 8),
        ("exec_vnode=(n1:ncpus=8:ngpus=2+n1[1]:ngpus=2)", 4),  # one chunk over two vnodes
        ("Resource_List.nodes=1:ppn=8:gpus=2", 2),
        ("Resource_List.nodes=1:ppn=8:gpus=2+2:ppn=4:gpus=1", 4),
    ],
)
def test_pbs_gpu_resources(resources, gpus):
    line = "01/01/2024 01:00:00;E;8.s;user=u account=acme start=1704067200 end=1704070800"
    line += " " + resources
    (job,) = parse_pbs([line + "\n"], tz=UTC)
    assert (job.gpus, job.gpu_seconds) == (gpus, gpus * 3600)


def test_torque_sample_gpus_are_per_node_over_every_chunk():
    jobs = [
        job for job in parse_pbs(fixture_lines("torque-gpus.log"), tz=UTC) if type(job) is JobRecord
    ]
    assert [(job.job_id, job.account, job.nodes, job.gpus) for job in jobs] == [
        ("7001", "ec110-guest", 2, 4),
        ("7002", "2024ai", 3, 4),
    ]


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ('account="acme llm"', "Job 9 has an account with whitespace in it: 'acme llm'."),
        ("account=acme Resource_List.ngpus=5000", "Resource_List.ngpus '5000' is out of range"),
        ("account=acme Resource_List.select=2:ngpus=4000", "Job 9 has 8,000 GPUs, more than"),
        ("account=acme Resource_List.ngpus=" + "9" * 30, "Resource_List.ngpus '999"),
        ("account=acme Exit_status=" + "9" * 5000, "Exit_status '999"),
        ("account=acme Resource_List.nodect=" + "9" * 5000, "Resource_List.nodect '999"),
        ("account=acme Resource_List.select=1:ngpus=" + "9" * 40, "Resource_List.select ngpus"),
        (
            "account=acme resources_used.walltime=90000:00:00",
            "Job 9 has resources_used.walltime '90000:00:00', more than ten years",
        ),
    ],
)
def test_pbs_record_with_a_bad_value_is_rejected_alone(attributes, reason):
    lines = [
        f"01/01/2024 01:00:00;E;9.s;user=u start=1704067200 {attributes}\n",
        "01/01/2024 01:00:00;E;10.s;user=u account=acme start=1704067200\n",
    ]
    rejected, job = parse_pbs(lines, tz=UTC)
    assert rejected.line_no == 1
    assert rejected.reason.startswith(reason)
    assert job.job_id == "10"


def test_pbs_line_with_nul_bytes_or_over_the_limit_is_rejected_alone():
    lines = [
        "01/01/2024 01:00:00;E;9.s;user=u account=ac\x00me start=1704067200\n",
        "01/01/2024 01:00:00;E;10.s;user=u account=acme start=1704067200 " + "x" * 300 + "\n",
        "01/01/2024 01:00:00;E;11.s;user=u account=acme start=1704067200\n",
    ]
    first, second, job = parse_pbs(lines, tz=UTC, max_line_length=200)
    assert first.reason == "The line holds NUL bytes: the file is damaged here."
    assert second.reason.endswith("over the limit of 200.")
    assert job.job_id == "11"


# --- import_usage passes the reading options through (the one part that needs a database) ----


@pytest.fixture
def leonardo(reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    return Cluster.objects.get(name="leonardo")


def run_import_usage(tmp_path: Path, text: str, *args: str) -> tuple[str, str]:
    path = tmp_path / "pull.txt"
    path.write_text(text, encoding="utf-8")
    return run_command("import_usage", "--cluster", "leonardo", *args, str(path))


@pytest.mark.django_db
def test_import_usage_reads_with_the_delimiter_and_time_format_it_is_given(tmp_path, leonardo):
    times = {"Submit": "2026/01/05-08:00:00", "Start": "2026/01/05-09:00:00"}
    line = sacct_line(**times, End="2026/01/05-10:00:00", JobName="run|1")
    text = HEADER.replace("|", "☃") + "\n" + line.replace("|", "☃").replace("run☃1", "run|1")
    out, err = run_import_usage(
        tmp_path,
        text,
        "--timezone",
        "UTC",
        "--delimiter",
        "☃",
        "--time-format",
        "%Y/%m/%d-%H:%M:%S",
    )
    assert out.strip().splitlines()[-1].startswith("imported=1 updated=0 unchanged=0")
    assert err == ""
    record = UsageRecord.objects.get()
    assert (record.start, record.job_name, record.gpu_seconds) == (
        utc(2026, 1, 5, 9, 0),
        "run|1",
        8 * 3600,
    )


def test_import_usage_refuses_an_empty_delimiter():
    with pytest.raises(CommandError, match="--delimiter is empty"):
        run_command("import_usage", "--cluster", "leonardo", "--delimiter", "", "-")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--format", "pbs", "--delimiter", ";"), "apply to sacct input only"),
        (("--time-format", "relative"), "SLURM_TIME_FORMAT=relative"),
        (("--time-format", "%H:%M"), "does not carry a full date and time"),
    ],
)
def test_import_usage_refuses_options_it_cannot_read_with_and_writes_nothing(
    tmp_path, leonardo, args, says
):
    with pytest.raises(CommandError, match=says):
        run_import_usage(tmp_path, HEADER + "\n" + sacct_line(), *args)
    assert not UsageImport.objects.exists()
