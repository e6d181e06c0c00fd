"""Slurm export layer: sacctmgr flat files and incremental sacctmgr commands (no database)."""

import json
import os
import random
import shlex
import shutil
import stat
import subprocess
import sys
from decimal import Decimal

import pytest

from allocations.slurm import (
    MAX_TEXT_LENGTH,
    QOS_LINE_PREFIX,
    SlurmAccount,
    clean_text,
    gpu_hours_to_minutes,
    parse_load_file,
    render_commands,
    render_load_file,
    snapshot,
    snapshot_after_load,
)

HOSTILE_TEXTS = [
    "x':GrpTRESMins=gres/gpu=999999999:Description='",
    'x":GrpTRESMins=gres/gpu=999999999:Description="',
    "line one\nAccount - 'evil':GrpTRESMins=gres/gpu=999999999",
    "carriage\rreturn\x00nul\x1bescape\u2028separator\u0085next",
    "comment # GrpTRESMins=gres/gpu=999999999",
    "continued \\\nAccount - 'evil'",
    "'; rm -rf / #",
    ";rm -rf /",
    "$(reboot) `reboot` | tee /etc/passwd & echo $HOME",
    "=GrpSubmitJobs=-1",
    "   padded\t\ttabs   ",
]


def make_account(name="acme_llm", **overrides):
    fields = {
        "name": name,
        "description": "Finnish legal LLM",
        "organization": "Acme AI Oy",
        "gpu_minutes": gpu_hours_to_minutes(50_000),
        "users": ("alice", "bob"),
        "blocked": False,
    }
    fields.update(overrides)
    return SlurmAccount(**fields)


def command_lines(script):
    return [line for line in script.splitlines() if line.startswith("sacctmgr ")]


def command_argvs(script):
    return [shlex.split(line) for line in command_lines(script)]


def modify(name, *settings, cluster="lumi"):
    return ["sacctmgr", "-i", "modify", "account", "where",
            f"name={name}", f"cluster={cluster}", "set", *settings]  # fmt: skip


def add_qos(name, minutes):
    return ["sacctmgr", "-i", "add", "qos", f"name={name}", "Flags=NoDecay",
            f"GrpTRESMins=gres/gpu={minutes}"]  # fmt: skip


def modify_qos(name, *settings):
    return ["sacctmgr", "-i", "modify", "qos", "where", f"name={name}", "set", *settings]


def qos_lines(text):
    """The shell lines a flat file asks to run before `sacctmgr load` (what sed extracts)."""
    return [line.removeprefix(QOS_LINE_PREFIX) for line in text.splitlines()
            if line.startswith(QOS_LINE_PREFIX)]  # fmt: skip


def qos_budgets(text):
    """{QOS name: GPU-minutes} from a flat file's QOS lines, each checked to be exactly
    'modify the QOS || add it', both with Flags=NoDecay and the same limit."""
    budgets = {}
    for line in qos_lines(text):
        argv = shlex.split(line)
        name = argv[5].removeprefix("name=")
        minutes = int(argv[-1].removeprefix("GrpTRESMins=gres/gpu="))
        assert argv == [*modify_qos(name, "Flags=NoDecay", f"GrpTRESMins=gres/gpu={minutes}"),
                        "||", *add_qos(name, minutes)], line  # fmt: skip
        budgets[name] = minutes
    return budgets


LOAD_FILE_HEADER = (
    "# hpcgate: sacctmgr load file for cluster {cluster}\n"
    "# Each account's GPU budget is a QOS of its own (Flags=NoDecay: its used GPU-minutes\n"
    "# never decay). sacctmgr load cannot create or change a QOS, so run the lines that\n"
    "# start with '#qos ' before loading the file:\n"
    "#   sed -n 's/^#qos //p' THIS_FILE | sh -e && sacctmgr -i load file=THIS_FILE\n"
)


# Flat file


def test_load_file_has_the_sacctmgr_dump_layout():
    accounts = [
        make_account(),
        make_account("beta_ai", description="Vision", organization="Beta Oy",
                     gpu_minutes=600, users=("carol",), blocked=True),
        make_account("gamma", users=()),
    ]  # fmt: skip

    text = render_load_file("lumi", accounts)

    qos = (
        "#qos sacctmgr -i modify qos where name={0} set Flags=NoDecay GrpTRESMins=gres/gpu={1}"
        " || sacctmgr -i add qos name={0} Flags=NoDecay GrpTRESMins=gres/gpu={1}\n"
    )
    assert text == (
        LOAD_FILE_HEADER.format(cluster="lumi")
        + qos.format("acme_llm", 3000000)
        + qos.format("beta_ai", 600)
        + qos.format("gamma", 3000000)
        + "Cluster - 'lumi'\n"
        "Parent - 'root'\n"
        "Account - 'acme_llm':Description='Finnish legal LLM':Organization='Acme AI Oy'"
        ":QOS='acme_llm':DefaultQOS='acme_llm'\n"
        "Account - 'beta_ai':Description='Vision':Organization='Beta Oy'"
        ":QOS='beta_ai':DefaultQOS='beta_ai':GrpSubmitJobs=0\n"
        "Account - 'gamma':Description='Finnish legal LLM':Organization='Acme AI Oy'"
        ":QOS='gamma':DefaultQOS='gamma'\n"
        "Parent - 'acme_llm'\n"
        "User - 'alice'\n"
        "User - 'bob'\n"
        "Parent - 'beta_ai'\n"
        "User - 'carol'\n"
    )


def test_load_file_round_trips_every_field_through_the_parser():
    accounts = [
        make_account(),
        make_account("beta_ai", description="Vision, models & more", organization="Beta GmbH",
                     gpu_minutes=90, users=("carol", "_svc.bot-1"), blocked=True),
    ]  # fmt: skip

    text = render_load_file("leonardo", accounts)
    parsed = parse_load_file(text)

    assert parsed["cluster"] == "leonardo"
    assert parsed["root_users"] == []
    assert parsed["accounts"] == {
        "acme_llm": {
            "Description": "Finnish legal LLM",
            "Organization": "Acme AI Oy",
            "GrpTRESMins": None,
            "GrpSubmitJobs": None,
            "QOS": "acme_llm",
            "DefaultQOS": "acme_llm",
            "parent": "root",
            "users": ["alice", "bob"],
        },
        "beta_ai": {
            "Description": "Vision, models & more",
            "Organization": "Beta GmbH",
            "GrpTRESMins": None,
            "GrpSubmitJobs": "0",
            "QOS": "beta_ai",
            "DefaultQOS": "beta_ai",
            "parent": "root",
            "users": ["_svc.bot-1", "carol"],
        },
    }
    # The budgets travel in the QOS lines that run before the load.
    assert qos_budgets(text) == {"acme_llm": 3000000, "beta_ai": 90}


def test_load_file_is_byte_identical_whatever_the_input_order():
    accounts = [
        make_account(f"acct_{index}", users=tuple(f"user{u}" for u in range(index + 3)))
        for index in range(8)
    ]
    expected = render_load_file("lumi", accounts)
    shuffler = random.Random(4)

    for _ in range(5):
        shuffled = [
            make_account(a.name, users=tuple(shuffler.sample(a.users, len(a.users))))
            for a in shuffler.sample(accounts, len(accounts))
        ]
        assert render_load_file("lumi", shuffled) == expected
    assert render_load_file("lumi", accounts) == expected


def test_load_file_uses_unix_newlines_and_ends_with_one():
    text = render_load_file("lumi", [make_account()])

    assert "\r" not in text
    assert text.endswith("'\n")
    assert not text.endswith("\n\n")


def test_load_file_for_no_accounts_still_names_the_cluster():
    assert render_load_file("vega", []) == (
        LOAD_FILE_HEADER.format(cluster="vega") + "Cluster - 'vega'\nParent - 'root'\n"
    )


def test_blocked_account_gets_grp_submit_jobs_zero_and_active_one_none():
    text = render_load_file(
        "lumi", [make_account("open_acct"), make_account("closed_acct", blocked=True)]
    )
    accounts = parse_load_file(text)["accounts"]

    assert accounts["closed_acct"]["GrpSubmitJobs"] == "0"
    assert accounts["open_acct"]["GrpSubmitJobs"] is None
    assert text.count("GrpSubmitJobs") == 1


@pytest.mark.parametrize(
    ("gpu_hours", "minutes"),
    [(50_000, 3_000_000), (0, 0), (1, 60), (Decimal("1.5"), 90), (Decimal("0.01"), 0), (2.5, 150)],
)
def test_gpu_hours_become_whole_gpu_minutes_rounded_down(gpu_hours, minutes):
    assert gpu_hours_to_minutes(gpu_hours) == minutes


@pytest.mark.parametrize("gpu_hours", [-1, Decimal("-0.5"), Decimal("NaN"), float("inf")])
def test_gpu_hours_must_be_a_finite_non_negative_number(gpu_hours):
    with pytest.raises(ValueError, match="gpu_hours"):
        gpu_hours_to_minutes(gpu_hours)


def test_gpu_minutes_reach_the_budget_qos_not_the_account():
    text = render_load_file("lumi", [make_account(gpu_minutes=gpu_hours_to_minutes(50_000))])

    assert qos_budgets(text) == {"acme_llm": 3000000}
    account = parse_load_file(text)["accounts"]["acme_llm"]
    assert (account["QOS"], account["DefaultQOS"], account["GrpTRESMins"]) == (
        "acme_llm", "acme_llm", None
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(("qos_exists", "expected_calls"), [(True, 1), (False, 2)])
def test_qos_lines_update_an_existing_qos_or_add_a_missing_one(
    tmp_path, qos_exists, expected_calls
):
    text = render_load_file("lumi", [make_account(gpu_minutes=60)])
    log = tmp_path / "argv.jsonl"
    fake = tmp_path / "bin" / "sacctmgr"
    fake.parent.mkdir()
    # Like sacctmgr: `modify` of a QOS that does not exist prints "Nothing modified", exits 1.
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['ARGV_LOG'], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit(1 if sys.argv[2] == 'modify' and not {qos_exists} else 0)\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
           "ARGV_LOG": str(log)}  # fmt: skip

    script = "\n".join(qos_lines(text)) + "\n"
    subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, env=env, check=True)

    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    calls = [
        modify_qos("acme_llm", "Flags=NoDecay", "GrpTRESMins=gres/gpu=60")[1:],
        add_qos("acme_llm", 60)[1:],
    ]
    assert recorded == calls[:expected_calls]


def test_load_file_header_lines_are_comments_to_sacctmgr():
    text = render_load_file("lumi", [make_account()])
    before_cluster = text.split("Cluster - ", 1)[0].splitlines()

    assert before_cluster and all(line.startswith("#") for line in before_cluster)


# Free text


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
@pytest.mark.parametrize("field", ["description", "organization"])
def test_hostile_free_text_cannot_add_specs_or_accounts_to_the_load_file(field, hostile):
    text = render_load_file("lumi", [make_account(gpu_minutes=600, **{field: hostile})])

    parsed = parse_load_file(text)

    assert list(parsed["accounts"]) == ["acme_llm"]
    account = parsed["accounts"]["acme_llm"]
    assert qos_budgets(text) == {"acme_llm": 600}
    assert (account["QOS"], account["DefaultQOS"]) == ("acme_llm", "acme_llm")
    assert account["GrpTRESMins"] is None
    assert account["GrpSubmitJobs"] is None
    assert account["users"] == ["alice", "bob"]
    assert set(account) == {
        "Description", "Organization", "GrpTRESMins", "GrpSubmitJobs", "QOS", "DefaultQOS",
        "parent", "users",
    }  # fmt: skip
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == 6
    assert len(text.splitlines()) == 6 + LOAD_FILE_HEADER.count("\n") + 1
    value = account["Description" if field == "description" else "Organization"]
    assert not set(value) & set("'\":#\\=|\n\r")


def test_unicode_names_of_organisations_survive():
    text = render_load_file(
        "lumi", [make_account(organization="Società Ävä", description="Модель für Ärzte")]
    )

    account = parse_load_file(text)["accounts"]["acme_llm"]
    assert account["Organization"] == "Società Ävä"
    assert account["Description"] == "Модель für Ärzte"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Acme AI Oy", "Acme AI Oy"),
        ("  Acme \t AI\n\nOy  ", "Acme AI Oy"),
        ('O\'Brien "Labs"', "O Brien Labs"),
        ("a:b#c\\d=e|f", "a b c d e f"),
        ("bell\x07nul\x00del\x7f", "bell nul del"),
        ("zero\u200bwidth\u2028line\u2029para\u00a0nbsp", "zero width line para nbsp"),
        ("Societa\u0300", "Società"),
        ("; rm -rf / & $(x)", "; rm -rf / & $(x)"),
        ("", ""),
        (None, ""),
        ("'\"::##", ""),
    ],
)
def test_clean_text_removes_what_sacctmgr_treats_specially(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_clean_text_caps_the_length_without_trailing_space():
    cleaned = clean_text("word " * 100)

    assert len(cleaned) <= MAX_TEXT_LENGTH
    assert cleaned == cleaned.strip()
    assert cleaned.startswith("word word")


def test_empty_free_text_falls_back_to_the_account_name_like_sacctmgr():
    text = render_load_file("lumi", [make_account(description=" '#' ", organization="")])

    account = parse_load_file(text)["accounts"]["acme_llm"]
    assert account["Description"] == "acme_llm"
    assert account["Organization"] == "acme_llm"


# Names


@pytest.mark.parametrize(
    "name",
    ["", "-acme", ".acme", "acme llm", "acme'x", 'acme"x', "acme:x", "acme,llm", "acme#x",
     "acme=x", "acme|x", "acme\\x", "acme\n", "acme\nUser", "a" * 64, "root", "ROOT", "acmé"],
)  # fmt: skip
def test_unsafe_account_names_are_refused_not_altered(name):
    with pytest.raises(ValueError, match="account name"):
        make_account(name)


@pytest.mark.parametrize(
    "user", ["", "Alice", "-alice", "alice smith", "alice'", "al:ice", "alice\n", "a" * 33, "1x"]
)
def test_unsafe_user_names_are_refused(user):
    with pytest.raises(ValueError, match="user name"):
        make_account(users=("bob", user))


@pytest.mark.parametrize("cluster", ["", "LUMI", "lumi'", "lumi\n", "lu mi", "lumi:x"])
def test_unsafe_cluster_names_are_refused_by_both_renderers(cluster):
    with pytest.raises(ValueError, match="cluster name"):
        render_load_file(cluster, [make_account()])
    with pytest.raises(ValueError, match="cluster name"):
        render_commands(cluster, None, [make_account()])


SITE_ACCOUNTS = ["ec110-guest", "ai.lab_2", "_shared", "2024ai", "SCSG0001", "a" * 63]


@pytest.mark.parametrize("name", SITE_ACCOUNTS)
def test_account_names_sites_use_go_into_the_flat_file_quoted_and_read_back(name):
    text = render_load_file("lumi", [make_account(name)])

    assert f"Account - '{name}':Description=" in text
    assert f"Parent - '{name}'" in text
    assert list(parse_load_file(text)["accounts"]) == [name]


@pytest.mark.parametrize("name", SITE_ACCOUNTS)
def test_account_names_sites_use_are_single_shell_words_in_commands(name):
    script = render_commands("lumi", None, [make_account(name)])

    argvs = command_argvs(script)
    add_account = next(argv for argv in argvs if argv[2:4] == ["add", "account"])
    assert add_account[:6] == ["sacctmgr", "-i", "add", "account", f"name={name}", "cluster=lumi"]
    add_alice = ["sacctmgr", "-i", "add", "user", "name=alice", f"account={name}", "cluster=lumi"]
    assert add_alice in argvs


def test_the_reason_a_name_is_refused_is_named():
    for name, reason in [
        ("acme,llm", "',' separates names in sacctmgr commands"),
        ("acme llm", "it contains whitespace"),
        ("-acme", "it starts with '-'"),
        ("a" * 64, "it has 64 characters, more than 63"),
        ("acmé", "'é' is not allowed"),
        ("ROOT", "reserved for the cluster's root"),
    ]:
        with pytest.raises(ValueError, match=reason):
            make_account(name)


def test_valid_edge_names_are_accepted():
    account = make_account("a" * 63, users=("_build", "a.b-c", "x" * 32))

    assert account.users == ("_build", "a.b-c", "x" * 32)


def test_users_are_stored_sorted_without_duplicates():
    assert make_account(users=["bob", "alice", "bob"]).users == ("alice", "bob")


@pytest.mark.parametrize("minutes", [-1, 2**63])
def test_gpu_minutes_out_of_range_are_refused(minutes):
    with pytest.raises(ValueError, match="gpu_minutes"):
        make_account(gpu_minutes=minutes)


@pytest.mark.parametrize("minutes", [1.5, "60", True])
def test_gpu_minutes_must_be_an_integer(minutes):
    with pytest.raises(TypeError, match="gpu_minutes"):
        make_account(gpu_minutes=minutes)


def test_the_same_account_twice_in_one_export_is_refused():
    with pytest.raises(ValueError, match="twice"):
        render_load_file("lumi", [make_account(), make_account(gpu_minutes=1)])


# Parser


def test_parser_reads_sacctmgr_dump_output():
    dump = (
        "# To edit this file start with a cluster line for the new cluster\n"
        "# Cluster - 'cluster_name':MaxNodesPerJob=50\n"
        "# Parent - 'root'\n"
        "Cluster - 'lumi':Fairshare=1:QOS='normal'\n"
        "Parent - 'root'\n"
        "User - 'root':DefaultAccount='root':AdminLevel='Administrator':Fairshare=1\n"
        "Account - 'acme_llm':Description='finnish legal llm':Organization='acme ai oy'"
        ":Fairshare=1:GrpTRESMins=gres/gpu=3000000:GrpSubmitJobs=0\n"
        "Parent - 'acme_llm'\n"
        "User - 'alice':DefaultAccount='acme_llm':Fairshare=1\n"
        "Account - 'sub':Description='sub':Organization='acme_llm':Fairshare=1\n"
    )

    parsed = parse_load_file(dump)

    assert parsed["cluster"] == "lumi"
    assert parsed["cluster_options"] == {"Fairshare": "1", "QOS": "normal"}
    assert parsed["root_users"] == ["root"]
    assert parsed["accounts"]["acme_llm"]["GrpTRESMins"] == "gres/gpu=3000000"
    assert parsed["accounts"]["acme_llm"]["GrpSubmitJobs"] == "0"
    assert parsed["accounts"]["acme_llm"]["Fairshare"] == "1"
    assert parsed["accounts"]["acme_llm"]["users"] == ["alice"]
    assert parsed["accounts"]["sub"]["parent"] == "acme_llm"
    assert parsed["accounts"]["sub"]["GrpTRESMins"] is None


def test_parser_cuts_comments_inside_quotes_like_sacctmgr():
    # Why clean_text must drop "#": sacctmgr ends the line there, even inside a quoted value.
    with pytest.raises(ValueError, match="line 3: unterminated quote"):
        parse_load_file(
            "Cluster - 'lumi'\nParent - 'root'\n"
            "Account - 'a':Description='x # y':GrpTRESMins=gres/gpu=1\n"
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no Cluster line"),
        ("Parent - 'root'\n", "line 1: the file must start with a Cluster line"),
        ("Cluster - 'a'\nCluster - 'b'\n", "line 2: only one Cluster line"),
        ("Cluster - 'a'\nQueue - 'x'\n", "line 2: not a Cluster, Parent, Account or User line"),
        ("Cluster - 'a'\nAccount -'x'\n", "line 2: not a Cluster"),
        ("Cluster - 'a'\nAccount - 'x\n", "line 2: unterminated quote"),
        ("Cluster - 'a'\nAccount - 'x'y\n", "line 2: text after a closing quote"),
        ("Cluster - 'a'\nAccount - 'x':Description\n", "line 2: expected Key=Value"),
        ("Cluster - 'a'\nAccount - 'x':Description='a'b'\n", "line 2: text after a closing"),
        ("Cluster - 'a'\nAccount - 'x':Description=a'b'\n", "line 2: stray quote"),
        ("Cluster - 'a'\nAccount - 'x'::GrpTRESMins=gres/gpu=1\n", "line 2: empty spec"),
        ("Cluster - 'a'\nAccount - 'x':GrpTRESMins=1:grptresmins=2\n", "line 2: option GrpTRE"),
        ("Cluster - 'a'\nAccount - name=x\n", "line 2: the first spec must be a name"),
        ("Cluster - 'a'\nAccount - 'x'\nAccount - 'x'\n", "line 3: account 'x' is defined twice"),
        ("Cluster - 'a'\n\nParent - 'nope'\n", "line 3: parent 'nope' is not defined"),
        ("Cluster - 'a'\nParent - 'root':Fairshare=1\n", "line 2: a Parent line takes no"),
        ("Cluster - 'a'\nAccount - 'x'\nParent - 'x'\nUser - 'u'\nUser - 'u'\n", "line 5: user"),
        ("Cluster - 'a'\nAccount - 'x':Description='a \\\n", "line 2: backslash"),
        ("Cluster - 'a'\r\nAccount - 'x'\n", "line 1: control character"),
        ("Cluster - 'a'\nAccount - 'x':users=evil\n", "line 2: option users is not allowed"),
    ],
)
def test_parser_refuses_lines_it_does_not_understand_with_their_number(text, message):
    with pytest.raises(ValueError, match=message):
        parse_load_file(text)


# Incremental commands


def test_first_export_adds_every_account_and_user():
    accounts = [
        make_account("beta_ai", description="Vision", organization="Beta Oy",
                     gpu_minutes=600, users=("carol",), blocked=True),
        make_account(),
    ]  # fmt: skip

    script = render_commands("lumi", None, accounts)

    assert command_argvs(script) == [
        add_qos("acme_llm", 3000000),
        ["sacctmgr", "-i", "add", "account", "name=acme_llm", "cluster=lumi", "parent=root",
         "Description=Finnish legal LLM", "Organization=Acme AI Oy",
         "QOS=acme_llm", "DefaultQOS=acme_llm"],
        ["sacctmgr", "-i", "add", "user", "name=alice", "account=acme_llm", "cluster=lumi"],
        ["sacctmgr", "-i", "add", "user", "name=bob", "account=acme_llm", "cluster=lumi"],
        add_qos("beta_ai", 600),
        ["sacctmgr", "-i", "add", "account", "name=beta_ai", "cluster=lumi", "parent=root",
         "Description=Vision", "Organization=Beta Oy", "QOS=beta_ai", "DefaultQOS=beta_ai",
         "GrpSubmitJobs=0"],
        ["sacctmgr", "-i", "add", "user", "name=carol", "account=beta_ai", "cluster=lumi"],
    ]  # fmt: skip


def test_script_header_is_always_present():
    script = render_commands("lumi", None, [make_account()])

    assert script.splitlines()[:3] == [
        "#!/bin/sh",
        "# hpcgate: sacctmgr changes for cluster lumi",
        "set -e",
    ]
    assert script.endswith("\n") and "\r" not in script


def test_no_change_gives_a_valid_script_without_commands():
    accounts = [make_account(), make_account("beta_ai", blocked=True)]

    script = render_commands("lumi", snapshot(accounts), accounts)

    assert command_lines(script) == []
    assert script == (
        "#!/bin/sh\n# hpcgate: sacctmgr changes for cluster lumi\nset -e\n# no changes\n"
    )


def test_snapshot_survives_json_and_still_means_no_change():
    accounts = [make_account(description="x':Description='#", users=("zed", "amy"))]

    stored = json.loads(json.dumps(snapshot(accounts)))

    assert command_lines(render_commands("lumi", stored, accounts)) == []
    assert stored["accounts"]["acme_llm"]["users"] == ["amy", "zed"]
    assert stored["accounts"]["acme_llm"]["description"] == "x Description"


def test_limit_change_modifies_only_the_budget_qos_limit():
    before = snapshot([make_account(gpu_minutes=3_000_000)])

    script = render_commands("lumi", before, [make_account(gpu_minutes=3_600_000)])

    assert command_argvs(script) == [modify_qos("acme_llm", "GrpTRESMins=gres/gpu=3600000")]


def test_account_exported_before_qos_budgets_moves_its_limit_to_a_new_qos():
    old = snapshot([make_account(gpu_minutes=600), make_account("beta_ai", blocked=True)])
    old["version"] = 1
    for entry in old["accounts"].values():
        del entry["budget"]

    now = [make_account(gpu_minutes=900), make_account("beta_ai", blocked=True)]

    script = render_commands("lumi", old, now)

    assert command_argvs(script) == [
        add_qos("acme_llm", 900),
        modify("acme_llm", "QOS=acme_llm", "DefaultQOS=acme_llm", "GrpTRESMins=gres/gpu=-1"),
        add_qos("beta_ai", 3000000),
        modify("beta_ai", "QOS=beta_ai", "DefaultQOS=beta_ai", "GrpTRESMins=gres/gpu=-1"),
    ]
    assert command_lines(render_commands("lumi", snapshot(now), now)) == []


def test_snapshot_says_each_budget_is_on_its_qos():
    stored = snapshot([make_account(), make_account("beta_ai")])

    assert stored["version"] == 2
    assert {name: entry["budget"] for name, entry in stored["accounts"].items()} == {
        "acme_llm": "qos", "beta_ai": "qos",
    }  # fmt: skip


def test_state_after_a_load_keeps_what_load_cannot_remove():
    before = snapshot([make_account(users=("alice", "bob"), blocked=True), make_account("old")])

    after = snapshot_after_load(before, [make_account(users=("bob", "carol"), gpu_minutes=5)])

    acme = after["accounts"]["acme_llm"]
    assert acme["users"] == ["alice", "bob", "carol"]  # load never removes alice
    assert acme["blocked"] is True  # nor lifts a block
    assert acme["gpu_minutes"] == 5 and acme["budget"] == "qos"
    assert after["accounts"]["old"] == before["accounts"]["old"]


def test_a_load_cannot_finish_moving_an_old_account_and_the_next_commands_do():
    old = snapshot([make_account(gpu_minutes=600)])
    old["version"] = 1
    del old["accounts"]["acme_llm"]["budget"]

    # The '#qos' lines made the QOS and the load named it, but kept the old default QOS.
    loaded = snapshot_after_load(old, [make_account(gpu_minutes=600)])

    assert loaded["accounts"]["acme_llm"]["budget"] == "loaded"
    assert command_argvs(render_commands("lumi", loaded, [make_account(gpu_minutes=900)])) == [
        modify_qos("acme_llm", "GrpTRESMins=gres/gpu=900"),
        modify("acme_llm", "QOS=acme_llm", "DefaultQOS=acme_llm", "GrpTRESMins=gres/gpu=-1"),
    ]
    # A new account in a load is complete.
    fresh = snapshot_after_load(old, [make_account("beta_ai")])
    assert fresh["accounts"]["beta_ai"]["budget"] == "qos"


def test_account_named_like_slurms_default_qos_is_refused():
    with pytest.raises(ValueError, match="default QOS"):
        make_account("normal")


def test_suspension_blocks_new_jobs():
    before = snapshot([make_account()])

    script = render_commands("lumi", before, [make_account(blocked=True)])

    assert command_argvs(script) == [modify("acme_llm", "GrpSubmitJobs=0")]


def test_reactivation_clears_the_submit_limit():
    before = snapshot([make_account(blocked=True)])

    script = render_commands("lumi", before, [make_account(blocked=False)])

    assert command_argvs(script) == [modify("acme_llm", "GrpSubmitJobs=-1")]


def test_user_changes_add_new_members_and_remove_departed_ones():
    before = snapshot([make_account(users=("alice", "bob"))])

    script = render_commands("lumi", before, [make_account(users=("alice", "dave"))])

    assert command_argvs(script) == [
        ["sacctmgr", "-i", "remove", "user", "where", "name=bob", "account=acme_llm",
         "cluster=lumi"],
        ["sacctmgr", "-i", "add", "user", "name=dave", "account=acme_llm", "cluster=lumi"],
    ]  # fmt: skip


def test_description_and_organisation_changes_are_set_together():
    before = snapshot([make_account()])

    script = render_commands(
        "lumi", before, [make_account(description="New title", organization="Acme AI Ltd")]
    )

    assert command_argvs(script) == [
        modify("acme_llm", "Description=New title", "Organization=Acme AI Ltd")
    ]


def test_only_the_changed_text_is_set():
    before = snapshot([make_account()])

    script = render_commands("lumi", before, [make_account(organization="Acme AI Ltd")])

    assert command_argvs(script) == [modify("acme_llm", "Organization=Acme AI Ltd")]


def test_whitespace_only_edits_to_free_text_are_not_changes():
    before = snapshot([make_account(description="Finnish legal LLM")])

    script = render_commands("lumi", before, [make_account(description=" Finnish  legal\nLLM ")])

    assert command_lines(script) == []


def test_account_gone_from_the_export_is_blocked_never_deleted():
    before = snapshot([make_account(), make_account("beta_ai")])

    script = render_commands("lumi", before, [make_account()])

    assert command_argvs(script) == [modify("beta_ai", "GrpSubmitJobs=0")]
    assert "remove account" not in script and "delete" not in script


def test_account_gone_that_was_already_blocked_needs_nothing():
    before = snapshot([make_account("beta_ai", blocked=True)])

    assert command_lines(render_commands("lumi", before, [])) == []


def test_restrictive_steps_come_before_permissive_ones_within_an_account():
    before = snapshot([make_account(users=("alice", "bob"), gpu_minutes=60)])
    now = [make_account(users=("alice", "carol"), gpu_minutes=120, blocked=True)]

    argvs = command_argvs(render_commands("lumi", before, now))

    closing = [argv[2:4] + argv[-1:] for argv in argvs]

    assert closing == [
        ["modify", "account", "GrpSubmitJobs=0"],
        ["remove", "user", "cluster=lumi"],
        ["modify", "qos", "GrpTRESMins=gres/gpu=120"],
        ["add", "user", "cluster=lumi"],
    ]
    reopened = render_commands("lumi", snapshot(now), [make_account(users=("dave",))])
    assert command_argvs(reopened)[-1] == modify("acme_llm", "GrpSubmitJobs=-1")
    assert command_argvs(reopened)[0][:4] == ["sacctmgr", "-i", "remove", "user"]


def test_accounts_are_processed_in_name_order_including_gone_ones():
    before = snapshot([make_account("b_gone"), make_account("d_kept")])
    now = [make_account("d_kept", gpu_minutes=1), make_account("a_new"), make_account("c_new")]

    argvs = command_argvs(render_commands("lumi", before, now))

    def account_of(argv):
        key = "name=" if argv[3] in ("account", "qos") else "account="
        return next(arg.removeprefix(key) for arg in argv if arg.startswith(key))

    touched = [account_of(argv) for argv in argvs]
    assert touched == sorted(touched)
    assert list(dict.fromkeys(touched)) == ["a_new", "b_gone", "c_new", "d_kept"]


def test_commands_are_byte_identical_whatever_the_input_order():
    before = snapshot([make_account(f"acct_{i}", users=("u1", "u2")) for i in range(6)])
    now = [make_account(f"acct_{i}", users=("u2", "u3", "u4"), gpu_minutes=i) for i in range(7)]
    expected = render_commands("lumi", before, now)

    for seed in range(4):
        shuffled = random.Random(seed).sample(now, len(now))
        assert render_commands("lumi", before, shuffled) == expected


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_hostile_free_text_stays_one_argument_of_one_command(hostile):
    account = make_account(description=hostile, organization=hostile)
    script = render_commands("lumi", None, [account])
    expected = clean_text(hostile) or "acme_llm"

    argvs = command_argvs(script)

    assert len(argvs) == 4
    assert argvs[0] == add_qos("acme_llm", 3000000)
    assert argvs[1] == [
        "sacctmgr", "-i", "add", "account", "name=acme_llm", "cluster=lumi", "parent=root",
        f"Description={expected}", f"Organization={expected}", "QOS=acme_llm",
        "DefaultQOS=acme_llm",
    ]  # fmt: skip
    assert len(script.splitlines()) == 7


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_script_runs_under_sh_and_passes_exactly_the_intended_argv(tmp_path):
    hostile = "x' ; touch pwned ; echo '$(touch pwned2)`touch pwned3` \"quoted\" & | \\"
    before = snapshot([make_account("beta_ai", users=("bob",)), make_account("gone_acct")])
    now = [make_account(description=hostile), make_account("beta_ai", blocked=True)]
    script = render_commands("lumi", before, now)
    log = tmp_path / "argv.jsonl"
    fake = tmp_path / "bin" / "sacctmgr"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['ARGV_LOG'], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
           "ARGV_LOG": str(log)}  # fmt: skip

    subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, check=True)

    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    assert recorded == [argv[1:] for argv in command_argvs(script)]
    assert recorded[0] == add_qos("acme_llm", 3000000)[1:]
    assert recorded[1][:4] == ["-i", "add", "account", "name=acme_llm"]
    assert f"Description={clean_text(hostile)}" in recorded[1]
    assert ["-i", "modify", "account", "where", "name=gone_acct", "cluster=lumi", "set",
            "GrpSubmitJobs=0"] in recorded  # fmt: skip
    assert not list(tmp_path.glob("pwned*"))


def test_tampered_snapshot_names_are_refused_before_reaching_a_shell():
    stored = snapshot([make_account()])
    stored["accounts"]["x; rm -rf /"] = stored["accounts"].pop("acme_llm")

    with pytest.raises(ValueError, match="account name"):
        render_commands("lumi", stored, [])

    stored = snapshot([make_account()])
    stored["accounts"]["acme_llm"]["users"] = ["bob;reboot"]
    with pytest.raises(ValueError, match="user name"):
        render_commands("lumi", stored, [])


@pytest.mark.parametrize(
    "previous",
    [
        {},
        {"version": 3, "accounts": {}},
        {"version": 2, "accounts": {"acme_llm": {"description": "x", "organization": "y",
                                                 "gpu_minutes": 60, "blocked": False,
                                                 "users": []}}},
        {"version": 2, "accounts": {"acme_llm": {"description": "x", "organization": "y",
                                                 "gpu_minutes": 60, "blocked": False,
                                                 "users": [], "budget": "elsewhere"}}},
        {"version": 1},
        {"version": 1, "accounts": []},
        {"version": 1, "accounts": {"acme_llm": {"description": "x"}}},
        {"version": 1, "accounts": {"acme_llm": {"description": "x", "organization": "y",
                                                 "gpu_minutes": "60", "blocked": False,
                                                 "users": []}}},
        ["not", "a", "mapping"],
    ],
)  # fmt: skip
def test_malformed_previous_snapshot_is_refused(previous):
    with pytest.raises(ValueError, match="previous export"):
        render_commands("lumi", previous, [make_account()])
