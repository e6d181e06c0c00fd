"""Scheduler exports from the database: flat file, incremental commands, CSV, history, command."""

import csv
import hashlib
import io
import re
import shlex

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations import services
from allocations.exports import (
    ExportApplyError,
    ExportError,
    export_build,
    export_create,
    export_mark_applied,
    export_pending,
)
from allocations.models import Allocation, SchedulerExport
from allocations.slurm import parse_load_file
from systems.models import Cluster
from tests.factories import days, make_allocation, make_organisation, make_site_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def lumi(reference_data):
    return Cluster.objects.get(name="lumi")


def commands_of(export):
    return [
        shlex.split(line) for line in export.content.splitlines() if line.startswith("sacctmgr")
    ]


def modify(account, *settings):
    return ["sacctmgr", "-i", "modify", "account", "where", f"name={account}", "cluster=lumi",
            "set", *settings]  # fmt: skip


def add_qos(name, minutes):
    return ["sacctmgr", "-i", "add", "qos", f"name={name}", "Flags=NoDecay",
            f"GrpTRESMins=gres/gpu={minutes}"]  # fmt: skip


def add_account(name, cluster="lumi"):
    return ["sacctmgr", "-i", "add", "account", f"name={name}", f"cluster={cluster}",
            "parent=root", "Description=Finnish legal LLM", "Organization=Acme AI Oy",
            f"QOS={name}", f"DefaultQOS={name}"]  # fmt: skip


def qos_budgets(flat_file):
    """{QOS: GPU-minutes} from the '#qos' lines a flat file asks to run before the load."""
    budgets = {}
    for line in flat_file.splitlines():
        if line.startswith("#qos "):
            argv = shlex.split(line.removeprefix("#qos "))
            assert "||" in argv and argv[-5:-3] == ["add", "qos"] and argv[-2] == "Flags=NoDecay"
            budgets[argv[-3].removeprefix("name=")] = argv[-1]
    return budgets


# Flat file


def test_slurm_file_parses_back_with_gpu_minute_limits_and_blocks(lumi):
    organisation = make_organisation(legal_name="Acme AI Oy")
    make_allocation(organisation=organisation, account="acme_llm", gpu_hours=50_000)
    make_allocation(
        organisation=organisation, account="acme_next", gpu_hours=1, users=(), start=days(5)
    )
    paused = make_allocation(
        organisation=organisation, account="acme_paused", gpu_hours=7, users=("carol",)
    )
    services.allocation_suspend(allocation=paused)
    used_up = make_allocation(organisation=organisation, account="acme_used", gpu_hours=2, users=())
    services.allocation_mark_exhausted(allocation=used_up)
    make_allocation(organisation=organisation, account="elsewhere", cluster="leonardo")

    content = export_create(fmt="slurm", cluster=lumi).content
    parsed = parse_load_file(content)

    assert parsed["cluster"] == "lumi"
    accounts = parsed["accounts"]
    assert sorted(accounts) == ["acme_llm", "acme_next", "acme_paused", "acme_used"]
    assert accounts["acme_llm"] == {
        "Description": "Finnish legal LLM",
        "Organization": "Acme AI Oy",
        "GrpTRESMins": None,
        "GrpSubmitJobs": None,
        "QOS": "acme_llm",
        "DefaultQOS": "acme_llm",
        "parent": "root",
        "users": ["alice", "bob"],
    }
    assert accounts["acme_next"]["GrpSubmitJobs"] == "0"  # scheduled: exists, but blocked
    assert accounts["acme_paused"]["GrpSubmitJobs"] == "0"
    assert accounts["acme_used"]["GrpSubmitJobs"] == "0"
    # The GPU-minute limits live on each account's NoDecay QOS, made before the load.
    assert qos_budgets(content) == {
        "acme_llm": "GrpTRESMins=gres/gpu=3000000",
        "acme_next": "GrpTRESMins=gres/gpu=60",
        "acme_paused": "GrpTRESMins=gres/gpu=420",
        "acme_used": "GrpTRESMins=gres/gpu=120",
    }


def test_closed_allocation_stays_blocked_once_exported_and_is_left_out_otherwise(lumi):
    exported = make_allocation(account="exported")
    export_create(fmt="slurm", cluster=lumi)
    never = make_allocation(account="never")
    services.allocation_close(allocation=exported)
    services.allocation_close(allocation=never)

    accounts = parse_load_file(export_build(fmt="slurm", cluster=lumi).content)["accounts"]

    assert list(accounts) == ["exported"]
    assert accounts["exported"]["GrpSubmitJobs"] == "0"


def test_hostile_names_from_the_database_cannot_inject_a_spec_or_a_command(lumi):
    hostile = "Evil':GrpTRESMins=gres/gpu=999999999:Description='x # $(reboot)\nAccount - 'z'"
    organisation = make_organisation(legal_name=hostile)
    make_allocation(organisation=organisation, account="victim", gpu_hours=1, project=hostile)

    flat = export_create(fmt="slurm", cluster=lumi).content
    parsed = parse_load_file(flat)
    assert list(parsed["accounts"]) == ["victim"]
    victim = parsed["accounts"]["victim"]
    assert qos_budgets(flat) == {"victim": "GrpTRESMins=gres/gpu=60"}
    assert (victim["QOS"], victim["GrpTRESMins"]) == ("victim", None)
    assert "'" not in victim["Description"] and "#" not in victim["Organization"]
    # Cluster, Parent, Account, Parent, 2 x User; the rest are comments
    assert len([line for line in flat.splitlines() if not line.startswith("#")]) == 6

    make_allocation(organisation=organisation, account="second", gpu_hours=2, project=hostile)
    script = export_create(fmt="commands", cluster=lumi).content
    argvs = [shlex.split(line) for line in script.splitlines()[3:]]
    [add] = [argv for argv in argvs if argv[:4] == ["sacctmgr", "-i", "add", "account"]]
    assert add[-2:] == ["QOS=second", "DefaultQOS=second"]
    assert add_qos("second", 120) in argvs
    assert all(line.startswith(("sacctmgr ", "#", "set -e")) for line in script.splitlines())


def test_same_data_gives_the_same_bytes(lumi):
    make_allocation(account="b_acct", users=("zed", "amy"))
    make_allocation(account="a_acct")

    for fmt in ("slurm", "json", "csv"):
        first, second = export_create(fmt=fmt, cluster=lumi), export_create(fmt=fmt, cluster=lumi)
        assert first.content == second.content
        assert first.checksum == hashlib.sha256(first.content.encode()).hexdigest()
        assert first.checksum == second.checksum


def test_scheduler_formats_need_a_cluster():
    with pytest.raises(ExportError, match="per cluster"):
        export_build(fmt="commands", cluster=None)
    with pytest.raises(ExportError, match="Unknown format"):
        export_build(fmt="xml", cluster=None)


# Incremental commands


def test_first_commands_export_adds_everything_then_nothing_changes(lumi, operator):
    make_allocation(account="acme_llm", users=("alice",))

    first = export_create(fmt="commands", cluster=lumi, actor=operator)
    second = export_create(fmt="commands", cluster=lumi, actor=operator)

    assert commands_of(first) == [
        add_qos("acme_llm", 3000000),
        add_account("acme_llm"),
        ["sacctmgr", "-i", "add", "user", "name=alice", "account=acme_llm", "cluster=lumi"],
    ]  # fmt: skip
    assert first.content.startswith("#!/bin/sh\n")
    assert commands_of(second) == []
    assert "# no changes" in second.content
    assert (first.created_by, first.allocations, first.snapshot["version"]) == (operator, 1, 2)


def test_new_allocation_appears_as_an_add_only(lumi):
    make_allocation(account="old")
    export_create(fmt="commands", cluster=lumi)
    make_allocation(account="new", users=())

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        add_qos("new", 3000000),
        add_account("new"),
    ]


def test_suspending_blocks_exactly_that_account_and_reactivating_lifts_it(lumi):
    make_allocation(account="keeps")
    paused = make_allocation(account="paused")
    export_create(fmt="commands", cluster=lumi)

    services.allocation_suspend(allocation=paused)
    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        modify("paused", "GrpSubmitJobs=0")
    ]

    services.allocation_reactivate(allocation=paused)
    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        modify("paused", "GrpSubmitJobs=-1")
    ]


def test_expiry_and_exhaustion_block_the_account(lumi):
    ending = make_allocation(account="ending")
    used_up = make_allocation(account="used_up")
    export_create(fmt="commands", cluster=lumi)

    services.allocation_expire(allocation=ending)
    services.allocation_mark_exhausted(allocation=used_up)

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        modify("ending", "GrpSubmitJobs=0"),
        modify("used_up", "GrpSubmitJobs=0"),
    ]


def test_top_up_changes_the_limit(lumi, applicant):
    allocation = make_allocation(gpu_hours=100)
    export_create(fmt="commands", cluster=lumi)
    change = services.change_request_submit(
        allocation=allocation, kind="top_up", justification="more", requested_by=applicant,
        extra_gpu_hours=50,
    )  # fmt: skip
    services.change_request_approve(change_request=change, actor=None)

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        ["sacctmgr", "-i", "modify", "qos", "where", "name=acme_llm", "set",
         "GrpTRESMins=gres/gpu=9000"],
    ]  # fmt: skip


def test_user_removal_and_addition(lumi):
    allocation = make_allocation(users=("alice", "bob"))
    export_create(fmt="commands", cluster=lumi)

    services.allocation_users_set(allocation=allocation, usernames=["bob", "carol"])

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        ["sacctmgr", "-i", "remove", "user", "where", "name=alice", "account=acme_llm",
         "cluster=lumi"],
        ["sacctmgr", "-i", "add", "user", "name=carol", "account=acme_llm", "cluster=lumi"],
    ]  # fmt: skip


def test_after_a_load_file_the_next_commands_remove_what_load_could_not(lumi):
    allocation = make_allocation(users=("alice", "bob"))
    services.allocation_suspend(allocation=allocation)
    export_create(fmt="slurm", cluster=lumi)
    services.allocation_users_set(allocation=allocation, usernames=["bob"])
    services.allocation_reactivate(allocation=allocation)
    # sacctmgr load neither removes alice nor lifts the block: the baseline must know that.
    export_create(fmt="slurm", cluster=lumi)

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        ["sacctmgr", "-i", "remove", "user", "where", "name=alice", "account=acme_llm",
         "cluster=lumi"],
        modify("acme_llm", "GrpSubmitJobs=-1"),
    ]  # fmt: skip


def test_baselines_are_per_cluster(lumi):
    make_allocation(account="on_lumi")
    make_allocation(account="on_leo", cluster="leonardo")
    export_create(fmt="commands", cluster=lumi)

    leonardo = Cluster.objects.get(name="leonardo")
    # The lumi export is no baseline for leonardo: its account and users are added in full.
    assert commands_of(export_create(fmt="commands", cluster=leonardo)) == [
        add_qos("on_leo", 3000000),
        add_account("on_leo", cluster="leonardo"),
        ["sacctmgr", "-i", "add", "user", "name=alice", "account=on_leo", "cluster=leonardo"],
        ["sacctmgr", "-i", "add", "user", "name=bob", "account=on_leo", "cluster=leonardo"],
    ]  # fmt: skip
    # ... and the leonardo export is no baseline for lumi, which has not changed.
    assert commands_of(export_create(fmt="commands", cluster=lumi)) == []


def test_accounts_exported_before_qos_budgets_move_to_their_qos_in_the_next_commands(lumi):
    make_allocation(account="acme_llm", users=("alice",), gpu_hours=10)
    # What an export of the old layout stored: the limit on the account, no QOS.
    SchedulerExport.objects.create(
        cluster=lumi,
        format="commands",
        checksum="0" * 64,
        content="",
        snapshot={
            "version": 1,
            "accounts": {
                "acme_llm": {"description": "Finnish legal LLM", "organization": "Acme AI Oy",
                             "gpu_minutes": 600, "blocked": False, "users": ["alice"]},
            },
        },
    )  # fmt: skip

    assert commands_of(export_create(fmt="commands", cluster=lumi)) == [
        add_qos("acme_llm", 600),
        modify("acme_llm", "QOS=acme_llm", "DefaultQOS=acme_llm", "GrpTRESMins=gres/gpu=-1"),
    ]
    assert commands_of(export_create(fmt="commands", cluster=lumi)) == []


# The site agent's pending changes


@pytest.fixture
def agent(lumi):
    token, _ = make_site_token(cluster=lumi)
    return token


def applied(export, token):
    return export_mark_applied(export_id=export.pk, site_token=token, checksum=export.checksum)


def test_pending_changes_are_the_commands_since_the_last_applied_export(lumi, agent):
    make_allocation(account="acme_llm", users=("alice",))

    pending = export_pending(cluster=lumi)

    assert (pending.format, pending.for_site_agent, pending.applied_at) == ("commands", True, None)
    assert commands_of(pending)[:2] == [add_qos("acme_llm", 3000000), add_account("acme_llm")]
    applied(pending, agent)
    assert export_pending(cluster=lumi) is None


def test_the_same_pending_export_comes_back_until_it_is_applied(lumi, agent):
    make_allocation()

    first = export_pending(cluster=lumi)

    assert export_pending(cluster=lumi) == first
    assert SchedulerExport.objects.count() == 1


def test_a_change_before_the_report_gives_a_new_export_from_the_same_baseline(lumi, agent):
    allocation = make_allocation(users=("alice",))
    applied(export_pending(cluster=lumi), agent)
    services.allocation_users_set(allocation=allocation, usernames=["alice", "bob"])
    stale = export_pending(cluster=lumi)
    services.allocation_suspend(allocation=allocation)

    fresh = export_pending(cluster=lumi)

    assert fresh != stale
    assert commands_of(fresh) == [
        modify("acme_llm", "GrpSubmitJobs=0"),
        ["sacctmgr", "-i", "add", "user", "name=bob", "account=acme_llm", "cluster=lumi"],
    ]


def test_an_export_the_agent_has_not_applied_is_no_baseline(lumi, agent):
    make_allocation()
    export_pending(cluster=lumi)  # fetched, never applied

    # An operator's export still starts from what Slurm has: nothing.
    assert commands_of(export_create(fmt="commands", cluster=lumi))[0] == add_qos(
        "acme_llm", 3000000
    )
    # ... and is itself taken as run, so the agent has nothing left to do.
    assert export_pending(cluster=lumi) is None


def test_the_agent_continues_from_an_operators_export(lumi, agent):
    allocation = make_allocation()
    export_create(fmt="commands", cluster=lumi)
    services.allocation_suspend(allocation=allocation)

    assert commands_of(export_pending(cluster=lumi)) == [modify("acme_llm", "GrpSubmitJobs=0")]


def test_pending_changes_freeze_the_account_names(lumi, agent):
    allocation = make_allocation()

    pending = export_pending(cluster=lumi)

    allocation.refresh_from_db()
    assert allocation.first_exported_at == pending.created_at


def test_applied_records_when_and_which_token_and_a_second_report_changes_nothing(lumi, agent):
    make_allocation()
    pending = export_pending(cluster=lumi)

    first = applied(pending, agent)
    other, _ = make_site_token(cluster=lumi, name="second agent")
    again = applied(pending, other)

    assert first.applied_at is not None and first.applied_by_token == agent
    assert (again.applied_at, again.applied_by_token) == (first.applied_at, agent)


def test_applied_is_refused_for_what_the_token_or_the_agent_did_not_get(lumi, agent):
    make_allocation()
    by_operator = export_create(fmt="commands", cluster=lumi)
    make_allocation(account="on_leo", cluster="leonardo")
    leonardo_agent, _ = make_site_token(cluster="leonardo", name="leonardo agent")
    on_leonardo = export_pending(cluster=Cluster.objects.get(name="leonardo"))

    with pytest.raises(ExportApplyError, match="not made for the site agent") as refused:
        applied(by_operator, agent)
    assert refused.value.reason == ExportApplyError.REFUSED
    with pytest.raises(ExportApplyError, match="No export") as refused:
        applied(on_leonardo, agent)
    assert refused.value.reason == ExportApplyError.REFUSED
    with pytest.raises(ExportApplyError, match="not this export") as refused:
        export_mark_applied(export_id=on_leonardo.pk, site_token=leonardo_agent, checksum="0")
    assert refused.value.reason == ExportApplyError.CHECKSUM
    assert not SchedulerExport.objects.filter(applied_at__isnull=False).exists()


def test_an_older_export_reported_after_a_newer_one_is_a_conflict(lumi, agent):
    allocation = make_allocation()
    older = export_pending(cluster=lumi)
    services.allocation_suspend(allocation=allocation)
    newer = export_pending(cluster=lumi)
    applied(newer, agent)

    with pytest.raises(ExportApplyError, match="fetch the pending changes again") as refused:
        applied(older, agent)

    assert refused.value.reason == ExportApplyError.CONFLICT
    older.refresh_from_db()
    assert older.applied_at is None
    assert export_pending(cluster=lumi) is None


# What an export records


def test_only_scheduler_exports_freeze_account_names(lumi):
    allocation = make_allocation()
    export_create(fmt="json", cluster=None)
    export_create(fmt="csv", cluster=lumi)
    allocation.refresh_from_db()
    assert allocation.first_exported_at is None

    export = export_create(fmt="commands", cluster=lumi)

    allocation.refresh_from_db()
    assert allocation.first_exported_at == export.created_at
    assert SchedulerExport.objects.filter(snapshot__isnull=False).count() == 1


def test_csv_has_one_row_per_allocation_and_defuses_formulas(lumi):
    make_allocation(
        organisation=make_organisation(legal_name='=HYPERLINK("x")'),
        account="acme_llm",
        model_name="m-7b",
    )

    rows = list(csv.DictReader(io.StringIO(export_create(fmt="csv", cluster=None).content)))

    assert len(rows) == 1
    assert rows[0]["organisation"] == '\'=HYPERLINK("x")'
    assert (rows[0]["cluster"], rows[0]["partition"], rows[0]["gpu_minutes"]) == (
        "lumi", "standard-g", "3000000"
    )  # fmt: skip
    assert rows[0]["users"] == "alice bob"


# Management command


def test_command_writes_the_file_atomically_and_prints_a_summary(lumi, tmp_path, capsys):
    make_allocation()
    target = tmp_path / "lumi.cfg"

    call_command("export_allocations", "--format", "slurm", "--cluster", "lumi", "-o", target)

    out = capsys.readouterr().out
    assert "Exported 1 allocation as slurm for cluster lumi" in out
    assert target.read_text() == SchedulerExport.objects.get().content
    assert [p.name for p in tmp_path.iterdir()] == ["lumi.cfg"]


def test_command_prints_the_export_on_stdout_and_the_summary_on_stderr(lumi, capsys):
    make_allocation()

    call_command("export_allocations", "--format", "json")

    captured = capsys.readouterr()
    assert captured.out.startswith('{\n  "allocations": [')
    assert "Exported 1 allocation as json" in captured.err


def test_command_dry_run_does_not_move_the_baseline(lumi, capsys):
    make_allocation()

    call_command("export_allocations", "--format", "commands", "--cluster", "lumi", "--dry-run")

    assert "add account" in capsys.readouterr().out
    assert not SchedulerExport.objects.exists()
    assert Allocation.objects.get().first_exported_at is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "slurm"], "--cluster is required"),
        (["--format", "commands", "--cluster", "nowhere"], "Unknown cluster 'nowhere'"),
    ],
)
def test_command_refuses_bad_arguments(reference_data, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_allocations", *arguments)
    assert not SchedulerExport.objects.exists()


def test_command_that_cannot_write_records_nothing(lumi, tmp_path):
    make_allocation()

    with pytest.raises(CommandError, match="Cannot write"):
        call_command(
            "export_allocations", "--format", "commands", "--cluster", "lumi",
            "-o", tmp_path / "missing" / "x.sh",
        )  # fmt: skip

    assert not SchedulerExport.objects.exists()


def test_csv_cells_stay_text_for_a_reader_splitting_on_semicolons(lumi):
    make_allocation(
        organisation=make_organisation(legal_name="Acme Oy;=cmd|' /C calc'!A0;"),
        account="acme_llm",
    )
    content = export_create(fmt="csv", cluster=None).content
    for line in content.splitlines():
        for piece in re.split(r"[,;\t|]", line):
            assert not piece.strip(' "').startswith(("=", "+", "@")), piece


def _allocations(count: int, start: int = 0) -> None:
    organisation = make_organisation()
    for number in range(start, start + count):
        make_allocation(cluster="lumi", account=f"acme_{number}", organisation=organisation)


@pytest.mark.parametrize("fmt", ["slurm", "commands", "json", "csv"])
def test_an_export_takes_the_same_queries_for_3_and_for_30_allocations(lumi, fmt):
    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            export = export_create(fmt=fmt, cluster=lumi if fmt in ("slurm", "commands") else None)
        return len(captured), export.allocations

    _allocations(3)
    few, counted = queries()
    assert counted == 3
    _allocations(27, start=3)
    many, counted = queries()
    assert counted == 30
    assert many == few


def _stored_exports(lumi, count: int) -> None:
    for _ in range(count):
        export_create(fmt="json", cluster=None)


def test_export_lists_read_neither_content_nor_snapshot_and_keep_their_queries(
    client, lumi, operator, api_client
):
    _allocations(2)
    client.force_login(operator)
    api_client.force_authenticate(operator)

    def lists():
        with CaptureQueriesContext(connection) as admin_page:
            assert client.get("/admin/allocations/schedulerexport/").status_code == 200
        with CaptureQueriesContext(connection) as api_page:
            response = api_client.get("/api/v1/exports/")
            assert response.status_code == 200
        return admin_page, api_page, response

    _stored_exports(lumi, 3)
    lists()  # the permissions are read once per user object
    admin_few, api_few, _ = lists()
    _stored_exports(lumi, 27)
    admin_many, api_many, response = lists()
    assert (len(admin_many), len(api_many)) == (len(admin_few), len(api_few))
    assert response.json()["count"] == 30
    for captured in (admin_many, api_many):
        for query in captured.captured_queries:
            assert '"allocations_schedulerexport"."content"' not in query["sql"]
            assert '"allocations_schedulerexport"."snapshot"' not in query["sql"]
