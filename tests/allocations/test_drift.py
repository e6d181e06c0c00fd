"""Drift check: sacctmgr's association and QOS listings against hpcgate's accounts (no database)."""

import shlex

import pytest

from allocations.drift import (
    DriftInputError,
    association_command,
    differences,
    render_repair,
)
from allocations.slurm import SlurmAccount


def account(name="acme_llm", **overrides):
    fields = {
        "name": name,
        "description": "Finnish legal LLM",
        "organization": "Acme AI Oy",
        "gpu_minutes": 600,
        "users": ("alice", "bob"),
        "blocked": False,
    }
    fields.update(overrides)
    return SlurmAccount(**fields)


def association_rows(name="acme_llm", users=("alice", "bob"), qos=None, limit="", submit=""):
    """What `sacctmgr -nP show assoc` prints for an account exported by hpcgate."""
    qos = name if qos is None else qos
    rows = [f"lumi|{name}||{qos}|{qos}|{limit}|{submit}"]
    rows += [f"lumi|{name}|{user}|{qos}|{qos}||" for user in users]
    return rows


ROOT = ["lumi|root||normal|||", "lumi|root|root|normal|||"]
QOS = "normal||\nacme_llm|NoDecay|gres/gpu=600\n"


def listing(*rows):
    return "\n".join([*ROOT, *rows]) + "\n"


def lines(found):
    return [difference.line for difference in found]


def repair_argvs(found):
    script = render_repair("lumi", found)
    return [shlex.split(line) for line in script.splitlines() if line.startswith("sacctmgr")]


def modify(*settings, name="acme_llm"):
    return ["sacctmgr", "-i", "modify", "account", "where", f"name={name}", "cluster=lumi",
            "set", *settings]  # fmt: skip


def test_slurm_as_exported_has_no_differences():
    found = differences("lumi", [account()], listing(*association_rows()), QOS)

    assert found == []
    assert render_repair("lumi", found) == (
        "#!/bin/sh\n# hpcgate: sacctmgr repairs for cluster lumi\nset -e\n# no repairs\n"
    )


def test_a_limit_changed_by_hand_on_the_qos_is_reported_and_repaired():
    qos = "normal||\nacme_llm|NoDecay|gres/gpu=6000\n"

    found = differences("lumi", [account()], listing(*association_rows()), qos)

    assert lines(found) == [
        "account acme_llm: QOS acme_llm has GrpTRESMins gres/gpu=6000, hpcgate grants 600"
    ]
    assert repair_argvs(found) == [
        ["sacctmgr", "-i", "modify", "qos", "where", "name=acme_llm", "set",
         "GrpTRESMins=gres/gpu=600"],
    ]  # fmt: skip


def test_a_qos_without_no_decay_or_without_a_gpu_limit_is_reported():
    qos = "acme_llm|DenyOnLimit|cpu=10\n"

    found = differences("lumi", [account()], listing(*association_rows()), qos)

    assert lines(found) == [
        "account acme_llm: QOS acme_llm lacks Flags=NoDecay (has DenyOnLimit)",
        "account acme_llm: QOS acme_llm has GrpTRESMins gres/gpu=none, hpcgate grants 600",
    ]
    # Flags+= keeps a flag the site added on purpose.
    assert repair_argvs(found)[0][-1] == "Flags+=NoDecay"


def test_a_missing_qos_is_made_before_anything_else():
    found = differences("lumi", [account()], listing(*association_rows()), "normal||\n")

    assert lines(found) == ["account acme_llm: QOS acme_llm is missing"]
    assert repair_argvs(found) == [
        ["sacctmgr", "-i", "add", "qos", "name=acme_llm", "Flags=NoDecay",
         "GrpTRESMins=gres/gpu=600"],
    ]  # fmt: skip


def test_a_missing_account_is_added_with_its_qos_block_and_users():
    found = differences("lumi", [account(blocked=True, users=("alice",))], listing(), "")

    assert lines(found) == [
        "account acme_llm: QOS acme_llm is missing",
        "account acme_llm: missing",
    ]
    assert repair_argvs(found) == [
        ["sacctmgr", "-i", "add", "qos", "name=acme_llm", "Flags=NoDecay",
         "GrpTRESMins=gres/gpu=600"],
        ["sacctmgr", "-i", "add", "account", "name=acme_llm", "cluster=lumi", "parent=root",
         "Description=Finnish legal LLM", "Organization=Acme AI Oy", "QOS=acme_llm",
         "DefaultQOS=acme_llm", "GrpSubmitJobs=0"],
        ["sacctmgr", "-i", "add", "user", "name=alice", "account=acme_llm", "cluster=lumi"],
    ]  # fmt: skip


def test_accounts_slurm_has_and_hpcgate_does_not_are_reported_but_never_touched():
    text = listing(*association_rows(), "lumi|staff||normal|normal||", "lumi|staff|ops|normal|||")

    found = differences("lumi", [account()], text, QOS)

    assert lines(found) == ["account staff: not in hpcgate (left alone)"]
    assert repair_argvs(found) == []
    assert differences("lumi", [account()], text, QOS, ignore=["sta*"]) == []


def test_users_added_or_removed_by_hand_are_reported():
    text = listing(*association_rows(users=("alice", "mallory")))

    found = differences("lumi", [account()], text, QOS)

    assert lines(found) == [
        "account acme_llm: user mallory is not in hpcgate",
        "account acme_llm: user bob is missing",
    ]
    assert repair_argvs(found) == [
        ["sacctmgr", "-i", "remove", "user", "where", "name=mallory", "account=acme_llm",
         "cluster=lumi"],
        ["sacctmgr", "-i", "add", "user", "name=bob", "account=acme_llm", "cluster=lumi"],
    ]  # fmt: skip


def test_an_account_or_user_running_outside_its_budget_qos_is_reported():
    rows = [
        "lumi|acme_llm||acme_llm,normal|normal||",
        "lumi|acme_llm|alice|acme_llm,normal|normal||",
        "lumi|acme_llm|bob|normal|normal||",
    ]

    found = differences("lumi", [account()], listing(*rows), QOS)

    assert lines(found) == [
        "account acme_llm: QOS is acme_llm,normal, hpcgate expects acme_llm",
        "account acme_llm: default QOS is normal, hpcgate expects acme_llm",
        "account acme_llm: user alice has QOS acme_llm,normal (default normal), "
        "hpcgate expects acme_llm",
        "account acme_llm: user bob has QOS normal (default normal), hpcgate expects acme_llm",
    ]
    qos_settings = ["QOS=acme_llm", "DefaultQOS=acme_llm"]
    assert repair_argvs(found) == [
        modify(*qos_settings),  # once for both of the account's lines
        ["sacctmgr", "-i", "modify", "user", "where", "name=alice", "account=acme_llm",
         "cluster=lumi", "set", *qos_settings],
        ["sacctmgr", "-i", "modify", "user", "where", "name=bob", "account=acme_llm",
         "cluster=lumi", "set", *qos_settings],
    ]  # fmt: skip


def test_a_gpu_limit_left_on_the_account_itself_is_reported():
    text = listing(*association_rows(limit="cpu=5,gres/gpu=99"))

    found = differences("lumi", [account()], text, QOS)

    assert lines(found) == [
        "account acme_llm: GrpTRESMins gres/gpu=99 on the account itself, hpcgate keeps the "
        "budget on QOS acme_llm only"
    ]
    assert repair_argvs(found) == [modify("GrpTRESMins=gres/gpu=-1")]
    # Other TRES limits are the site's business.
    assert differences("lumi", [account()], listing(*association_rows(limit="cpu=5")), QOS) == []


def test_block_state_is_compared_both_ways():
    blocked = listing(*association_rows(submit="0"))
    open_ = listing(*association_rows())

    assert lines(differences("lumi", [account()], blocked, QOS)) == [
        "account acme_llm: blocked (GrpSubmitJobs=0), hpcgate says open"
    ]
    assert repair_argvs(differences("lumi", [account()], blocked, QOS)) == [
        modify("GrpSubmitJobs=-1")
    ]
    assert lines(differences("lumi", [account(blocked=True)], open_, QOS)) == [
        "account acme_llm: open, hpcgate says blocked (GrpSubmitJobs=0)"
    ]
    # Another submit limit is the site's, and not a block.
    assert differences("lumi", [account()], listing(*association_rows(submit="50")), QOS) == []


def test_repairs_close_before_they_open():
    rows = association_rows(users=("alice", "mallory"), qos="normal", limit="gres/gpu=1")
    found = differences("lumi", [account(blocked=True)], listing(*rows), QOS)

    first = repair_argvs(found)[0]
    assert first == modify("GrpSubmitJobs=0")
    reopened = listing(*association_rows(submit="0", users=()))
    now_open = differences("lumi", [account()], reopened, QOS)
    assert repair_argvs(now_open)[-1] == modify("GrpSubmitJobs=-1")
    assert [argv[2:4] for argv in repair_argvs(now_open)[:-1]] == [["add", "user"]] * 2


def test_without_the_qos_listing_the_qos_themselves_are_not_compared():
    assert differences("lumi", [account()], listing(*association_rows()), None) == []


def test_a_header_line_is_read_and_columns_may_come_in_any_order():
    text = (
        "Account|User|Cluster|GrpSubmit|Def QOS|QOS|GrpTRESMins\n"
        "root||lumi||normal|normal|\n"
        "acme_llm||lumi|0|acme_llm|acme_llm|\n"
        "acme_llm|alice|lumi||acme_llm|acme_llm|\n"
    )
    qos = "Name|Flags|GrpTRESMins\nacme_llm|NoDecay|gres/gpu=600\n"

    found = differences("lumi", [account(users=("alice",), blocked=True)], text, qos)

    assert found == []


def test_rows_of_other_clusters_are_not_this_clusters():
    text = listing(*association_rows(), "leonardo|elsewhere||normal|normal||")

    assert differences("lumi", [account()], text, QOS) == []
    with pytest.raises(DriftInputError, match="no account of cluster lumi, only of leonardo"):
        differences("lumi", [account()], "leonardo|elsewhere||normal|normal||\n", QOS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lumi|acme_llm||acme_llm\n", "association line 1: 4 fields, expected 7"),
        ("lumi|root||normal|||\nlumi|a||q|q|gres/gpu|\n", "association line 2: cannot read"),
    ],
)
def test_unreadable_listings_name_the_line(text, message):
    with pytest.raises(DriftInputError, match=message):
        differences("lumi", [account()], text, QOS)


def test_the_association_command_asks_for_exactly_the_fields_read():
    assert association_command("lumi") == [
        "sacctmgr", "-n", "-P", "show", "assoc", "where", "cluster=lumi",
        "format=Cluster,Account,User,QOS,DefaultQOS,GrpTRESMins,GrpSubmitJobs",
    ]  # fmt: skip
