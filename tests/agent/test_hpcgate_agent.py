"""agent/hpcgate_agent.py against a stand-in hpcgate and stand-in sacctmgr and sacct.

The real thing, hpcgate and Slurm both, is tests/slurm/test_agent.py; here each rule of the agent
is pinned down without either: order of commands, resuming, reporting once, the accounting
window, 201 and 202 answers, the lock, the dry run, the configuration.
"""

import fcntl
import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

AGENT_PATH = Path(__file__).resolve().parents[2] / "agent" / "hpcgate_agent.py"
spec = importlib.util.spec_from_file_location("hpcgate_agent", AGENT_PATH)
hpcgate_agent = importlib.util.module_from_spec(spec)
sys.modules.setdefault("hpcgate_agent", hpcgate_agent)
spec.loader.exec_module(hpcgate_agent)

KEY = "hgs_test-key"
SACCT_TEXT = "JobIDRaw|JobID|Account\n1|1|acme_llm\n"


def export(export_id, *commands):
    content = "#!/bin/sh\n# hpcgate: sacctmgr changes for cluster lumi\nset -e\n"
    content += "".join(f"{command}\n" for command in commands)
    checksum = hashlib.sha256(content.encode()).hexdigest()
    return {"id": export_id, "cluster": "lumi", "format": "commands", "checksum": checksum,
            "created_at": "2026-01-01T00:00:00Z", "content": content}  # fmt: skip


class StandIn:
    """An hpcgate that answers what a test queues, and records every request it gets."""

    def __init__(self):
        self.pending = []  # exports handed out one per GET; the last one stays
        self.applied_status = [200]  # statuses of successive reports; the last one stays
        self.import_answers = [(201, {"status": "done", "summary": "imported=1"}, {})]
        self.requests = []

    def next_pending(self):
        if not self.pending:
            return None
        return self.pending.pop(0) if len(self.pending) > 1 else self.pending[0]

    def answer(self, method, path, body, headers):
        self.requests.append((method, path, body, headers))
        if headers.get("Authorization") != f"SiteToken {KEY}":
            return 401, {"detail": "no"}, {}
        if path == "/api/v1/clusters/lumi/pending-changes/":
            return 200, {"cluster": "lumi", "export": self.next_pending()}, {}
        if path.startswith("/api/v1/exports/") and path.endswith("/applied/"):
            status = self.applied_status.pop(0) if len(self.applied_status) > 1 else (
                self.applied_status[0]
            )  # fmt: skip
            return status, {"applied_at": "2026-01-01T00:00:01Z", "detail": "x"}, {}
        if path.startswith("/api/v1/usage/imports/"):
            answers = self.import_answers
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return 404, {"detail": "not found"}, {}

    def calls(self, method=None, prefix=""):
        return [
            (m, p, b) for m, p, b, _ in self.requests
            if (method is None or m == method) and p.startswith(prefix)
        ]  # fmt: skip


@pytest.fixture
def hpcgate():
    stand_in = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            status, payload, headers = stand_in.answer(
                self.command, self.path, body, dict(self.headers)
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield stand_in
    server.shutdown()
    server.server_close()


@pytest.fixture
def slurm(tmp_path):
    """Stand-in sacctmgr and sacct: they log their argv; sacctmgr fails as rules.json says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "slurm.jsonl"
    rules = tmp_path / "rules.json"
    rules.write_text("[]")
    script = (
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"log, rules = {str(log)!r}, {str(rules)!r}\n"
        "with open(log, 'a') as f:\n"
        "    f.write(json.dumps({'tool': os.path.basename(sys.argv[0]), 'argv': sys.argv[1:],\n"
        "                        'tz': os.environ.get('TZ')}) + '\\n')\n"
        "if os.path.basename(sys.argv[0]) == 'sacct':\n"
        f"    sys.stdout.write({SACCT_TEXT!r})\n"
        "    sys.exit(0)\n"
        "line = ' '.join(sys.argv[1:])\n"
        "for rule in json.load(open(rules)):\n"
        "    if rule['match'] in line:\n"
        "        print(rule['output'])\n"
        "        sys.exit(rule['exit'])\n"
    )
    for tool in ("sacctmgr", "sacct"):
        path = bin_dir / tool
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    class Slurm:
        def fail(self, match, output="Problem", exit_code=1):
            current = json.loads(rules.read_text())
            rules.write_text(json.dumps([*current, {"match": match, "output": output,
                                                    "exit": exit_code}]))  # fmt: skip

        def clear(self):
            rules.write_text("[]")

        def calls(self, tool="sacctmgr"):
            if not log.exists():
                return []
            entries = [json.loads(line) for line in log.read_text().splitlines()]
            return [entry for entry in entries if entry["tool"] == tool]

        def commands(self):
            return [" ".join(entry["argv"]) for entry in self.calls()]

    slurm = Slurm()
    slurm.bin = bin_dir
    return slurm


@pytest.fixture
def run(hpcgate, slurm, tmp_path, capsys, monkeypatch):
    """Runs the agent once; returns (exit status, stdout, stderr)."""
    monkeypatch.setattr(hpcgate_agent, "FIRST_POLL_PAUSE", 0.01)

    def run(*arguments, **settings):
        environ = {
            "HPCGATE_URL": hpcgate.url,
            "HPCGATE_SITE_TOKEN": KEY,
            "HPCGATE_CLUSTER": "lumi",
            "HPCGATE_AGENT_STATE_DIR": str(tmp_path / "state"),
            "HPCGATE_SACCTMGR": str(slurm.bin / "sacctmgr"),
            "HPCGATE_SACCT": str(slurm.bin / "sacct"),
            "HPCGATE_AGENT_IMPORT_TIMEOUT": "20",
            **settings,
        }
        status = hpcgate_agent.main(list(arguments), environ)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def state(tmp_path):
    path = tmp_path / "state" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


ADD_QOS = "sacctmgr -i add qos name=acme_llm Flags=NoDecay GrpTRESMins=gres/gpu=60"
ADD_ACCOUNT = (
    "sacctmgr -i add account name=acme_llm cluster=lumi parent=root Description=x "
    "Organization=y QOS=acme_llm DefaultQOS=acme_llm"
)
ADD_ALICE = "sacctmgr -i add user name=alice account=acme_llm cluster=lumi"
ADD_BOB = "sacctmgr -i add user name=bob account=acme_llm cluster=lumi"


# Changes


def test_pending_changes_are_applied_in_order_and_reported_with_their_checksum(
    run, hpcgate, slurm, tmp_path
):
    pending = export(7, ADD_QOS, ADD_ACCOUNT, ADD_ALICE)
    hpcgate.pending = [pending, None]

    status, out, err = run("--changes-only")

    assert status == 0, err
    assert slurm.commands() == [ADD_QOS[9:], ADD_ACCOUNT[9:], ADD_ALICE[9:]]
    [report] = hpcgate.calls("POST", "/api/v1/exports/")
    assert report[1] == "/api/v1/exports/7/applied/"
    assert json.loads(report[2]) == {"checksum": pending["checksum"]}
    assert "applied export 7 (3 commands)" in out
    assert state(tmp_path)["unreported"] == [] and state(tmp_path)["unfinished"] is None


def test_nothing_pending_runs_nothing(run, hpcgate, slurm):
    status, out, _ = run("--changes-only")

    assert status == 0
    assert slurm.calls() == [] and hpcgate.calls("POST") == []
    assert "no pending changes for cluster lumi" in out


@pytest.mark.parametrize(
    "line",
    [
        "rm -rf /",
        "sacctmgr -i delete account name=acme_llm",
        "sacctmgr -i add cluster evil",
        "sacctmgr add account name=x cluster=lumi",
        "sacctmgr -i add user name=x account=y cluster=lumi; reboot",
        "sacctmgr -i modify qos 'unterminated",
    ],
)
def test_anything_but_a_sacctmgr_change_stops_the_whole_export(run, hpcgate, slurm, line):
    hpcgate.pending = [export(7, ADD_QOS, line)]

    status, _, err = run("--changes-only")

    assert status == 1
    assert "line 5 of the export" in err
    assert slurm.calls() == [] and hpcgate.calls("POST") == []


def test_an_export_that_does_not_match_its_checksum_is_not_applied(run, hpcgate, slurm):
    tampered = export(7, ADD_QOS)
    tampered["content"] += "sacctmgr -i add user name=mallory account=acme_llm cluster=lumi\n"
    hpcgate.pending = [tampered]

    status, _, err = run("--changes-only")

    assert status == 1 and "checksum" in err
    assert slurm.calls() == []


def test_a_failed_command_stops_the_export_and_the_next_run_resumes_after_what_was_done(
    run, hpcgate, slurm, tmp_path
):
    hpcgate.pending = [export(7, ADD_QOS, ADD_ACCOUNT, ADD_ALICE)]
    slurm.fail("add account", "sacctmgr: error: Problem talking to the database")

    status, _, err = run("--changes-only")

    assert status == 1 and "Problem talking to the database" in err
    assert state(tmp_path)["unfinished"]["done"] == [0]
    assert hpcgate.calls("POST") == []
    slurm.clear()
    hpcgate.pending = [None]  # once export 7 is reported, hpcgate has nothing more

    status, out, err = run("--changes-only")

    assert status == 0, err
    assert slurm.commands()[2:] == [ADD_ACCOUNT[9:], ADD_ALICE[9:]]
    assert "stopped half-way last time" in out
    assert [call[1] for call in hpcgate.calls("POST")] == ["/api/v1/exports/7/applied/"]


def test_a_stopped_export_is_finished_and_reported_before_the_next_is_fetched(run, hpcgate, slurm):
    first = export(7, ADD_QOS, ADD_ACCOUNT)
    # What hpcgate hands out once the allocations changed: a new diff from the same baseline.
    second = export(8, ADD_QOS, ADD_ACCOUNT, ADD_ALICE)
    hpcgate.pending = [first, second]
    slurm.fail("add account")
    run("--changes-only")
    slurm.clear()
    hpcgate.pending = [None]  # after export 7 is reported, hpcgate has nothing more

    status, _, err = run("--changes-only")

    assert status == 0, err
    assert [call[1] for call in hpcgate.calls("POST")] == ["/api/v1/exports/7/applied/"]
    assert slurm.commands()[2:] == [ADD_ACCOUNT[9:]]


def test_an_export_this_agent_applied_is_never_applied_again(run, hpcgate, slurm):
    hpcgate.pending = [export(7, ADD_QOS)]  # hpcgate keeps handing it out
    run("--changes-only")

    status, _, err = run("--changes-only")

    assert status == 1 and "not applying it twice" in err
    assert len(slurm.calls()) == 1


def test_a_report_that_did_not_arrive_is_sent_again_without_applying_again(
    run, hpcgate, slurm, tmp_path
):
    hpcgate.pending = [export(7, ADD_QOS)]
    hpcgate.applied_status = [503, 200]

    status, _, err = run("--changes-only")

    assert status == 1 and "503" in err
    assert state(tmp_path)["unreported"][0]["id"] == 7
    hpcgate.pending = [None]

    status, out, _ = run("--changes-only")

    assert status == 0
    assert len(slurm.calls()) == 1  # applied once only
    assert [c[1] for c in hpcgate.calls("POST")] == ["/api/v1/exports/7/applied/"] * 2
    assert state(tmp_path)["unreported"] == []


def test_a_report_hpcgate_refuses_for_good_is_dropped(run, hpcgate, tmp_path):
    hpcgate.pending = [export(7, ADD_QOS)]
    hpcgate.applied_status = [409]

    status, _, err = run("--changes-only")

    assert status == 0
    assert "refused the report of export 7" in err
    assert state(tmp_path)["unreported"] == []
    # Should hpcgate still hand it out, it is not applied twice: people have to look.
    assert run("--changes-only")[0] == 1


def test_the_command_running_when_the_agent_died_may_already_have_taken_effect(
    run, hpcgate, slurm, tmp_path
):
    job = export(7, ADD_QOS, ADD_ACCOUNT)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(json.dumps({
        "cluster": "lumi", "unreported": [], "last_pull_end": None,
        "unfinished": {**{k: job[k] for k in ("id", "checksum", "content")},
                       "done": [0], "running": 1},
    }))  # fmt: skip
    slurm.fail("add account", " Nothing new added.")
    hpcgate.pending = [None]

    status, _, err = run("--changes-only")

    assert status == 0, err
    assert slurm.commands() == [ADD_ACCOUNT[9:]]


def test_an_account_that_exists_already_stops_the_export_unless_it_was_this_agents(
    run, hpcgate, slurm
):
    hpcgate.pending = [export(7, ADD_QOS)]
    slurm.fail("add qos", " Nothing new added.")

    status, _, err = run("--changes-only")

    assert status == 1 and "Nothing new added" in err


def test_memberships_already_there_or_already_gone_are_as_wanted(run, hpcgate, slurm):
    remove = "sacctmgr -i remove user where name=bob account=acme_llm cluster=lumi"
    hpcgate.pending = [export(7, ADD_ALICE, remove)]
    slurm.fail("add user", " Nothing new added.")
    slurm.fail("remove user", " Nothing deleted")

    status, _, err = run("--changes-only")

    assert status == 0, err


def test_forget_unfinished_drops_the_stopped_export(run, hpcgate, slurm, tmp_path):
    hpcgate.pending = [export(7, ADD_QOS, ADD_ACCOUNT)]
    slurm.fail("add account")
    run("--changes-only")
    hpcgate.pending = [None]

    status, _, err = run("--changes-only", "--forget-unfinished")

    assert status == 0
    assert "forgetting export 7" in err
    assert state(tmp_path)["unfinished"] is None
    assert hpcgate.calls("POST") == []


# Accounting


def test_accounting_since_the_last_pull_with_an_overlap_in_utc(run, hpcgate, slurm, tmp_path):
    before = datetime.now(UTC).replace(tzinfo=None).replace(microsecond=0)

    status, out, err = run("--usage-only")

    assert status == 0, err
    [first] = slurm.calls("sacct")
    assert first["tz"] == "UTC"
    options = dict(
        arg.split("=", 1) for arg in first["argv"] if arg.startswith("--") and "=" in arg
    )
    end = datetime.fromisoformat(options["--endtime"])
    assert datetime.fromisoformat(options["--starttime"]) == end - timedelta(days=1)
    assert before <= end <= datetime.now(UTC).replace(tzinfo=None)
    assert {"--allusers", "--parsable2", "--allocations", "--duplicates"} <= set(first["argv"])
    [post] = hpcgate.calls("POST", "/api/v1/usage/imports/")
    assert post[1] == "/api/v1/usage/imports/?timezone=UTC"
    assert post[2] == SACCT_TEXT
    assert "imported: imported=1" in out
    assert state(tmp_path)["last_pull_end"] == end.isoformat()

    run("--usage-only", HPCGATE_AGENT_OVERLAP_MINUTES="30")

    second = slurm.calls("sacct")[1]["argv"]
    assert f"--starttime={(end - timedelta(minutes=30)).isoformat()}" in second


def test_an_import_answered_202_is_followed_until_it_is_done(run, hpcgate, tmp_path):
    hpcgate.import_answers = [
        (202, {"status": "queued"}, {"Location": "/api/v1/usage/imports/42/"}),
        (200, {"status": "running"}, {}),
        (200, {"status": "done", "imported": 3, "updated": 0, "unchanged": 1}, {}),
    ]

    status, out, err = run("--usage-only")

    assert status == 0, err
    assert [c[1] for c in hpcgate.calls("GET", "/api/v1/usage/")] == [
        "/api/v1/usage/imports/42/"
    ] * 2
    assert "imported=3 updated=0 unchanged=1" in out
    assert state(tmp_path)["last_pull_end"] is not None


def test_the_run_url_may_come_in_the_body(run, hpcgate):
    hpcgate.import_answers = [
        (202, {"status": "queued", "url": f"{hpcgate.url}/api/v1/usage/imports/42/"}, {}),
        (200, {"status": "done", "summary": "imported=0 updated=1"}, {}),
    ]

    status, out, _ = run("--usage-only")

    assert status == 0 and "imported=0 updated=1" in out


def test_a_failed_import_keeps_the_window_for_the_next_run(run, hpcgate, tmp_path):
    hpcgate.import_answers = [(201, {"status": "failed", "error": "disk full"}, {})]

    status, _, err = run("--usage-only")

    assert status == 1 and "disk full" in err
    assert state(tmp_path).get("last_pull_end") is None


def test_a_run_url_on_another_server_is_not_followed(run, hpcgate):
    hpcgate.import_answers = [(202, {}, {"Location": "http://elsewhere.example/steal"})]

    status, _, err = run("--usage-only")

    assert status == 1 and "outside" in err
    assert hpcgate.calls("GET") == []


# Dry run, lock, configuration


def test_dry_run_prints_what_it_would_do_and_does_nothing(run, hpcgate, slurm, tmp_path):
    hpcgate.pending = [export(7, ADD_QOS, ADD_ALICE)]

    status, out, _ = run("--dry-run")

    assert status == 0
    assert f"  {ADD_QOS}" in out and f"  {ADD_ALICE}" in out
    assert "would report export 7 applied" in out
    assert "would run: TZ=UTC" in out and "--allusers" in out
    assert slurm.calls() == [] and slurm.calls("sacct") == []
    assert hpcgate.calls("POST") == []
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_second_run_while_one_holds_the_lock_does_nothing(run, hpcgate, slurm, tmp_path):
    hpcgate.pending = [export(7, ADD_QOS)]
    (tmp_path / "state").mkdir()
    with open(tmp_path / "state" / "agent.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)

        status, _, err = run()

    assert status == 0 and "another run holds the lock" in err
    assert hpcgate.requests == [] and slurm.calls() == []


def test_settings_come_from_the_ini_file_and_the_environment_wins(tmp_path):
    ini = tmp_path / "agent.ini"
    token = tmp_path / "token"
    token.write_text(f"{KEY}\n")
    ini.write_text(
        "[hpcgate]\nurl = https://hpcgate.example.eu/\n"
        f"token_file = {token}\ncluster = lumi\noverlap_minutes = 15\n"
    )

    config = hpcgate_agent.load_config(str(ini), {"HPCGATE_CLUSTER": "leonardo"})

    assert (config.url, config.token, config.cluster) == (
        "https://hpcgate.example.eu", KEY, "leonardo"
    )  # fmt: skip
    assert config.overlap_minutes == 15 and config.first_pull_days == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HPCGATE_CLUSTER": "lumi", "HPCGATE_SITE_TOKEN": KEY}, "missing setting(s): url"),
        ({"HPCGATE_URL": "https://h.example", "HPCGATE_CLUSTER": "lumi"}, "token or token_file"),
        ({"HPCGATE_URL": "http://h.example", "HPCGATE_CLUSTER": "lumi",
          "HPCGATE_SITE_TOKEN": KEY}, "use https"),
        ({"HPCGATE_URL": "https://h.example", "HPCGATE_CLUSTER": "lumi",
          "HPCGATE_SITE_TOKEN": KEY, "HPCGATE_AGENT_OVERLAP_MINUTES": "soon"}, "not a number"),
    ],
)  # fmt: skip
def test_a_bad_configuration_exits_2_naming_the_problem(environ, message, capsys, tmp_path):
    environ = {"HPCGATE_AGENT_STATE_DIR": str(tmp_path), **environ}

    assert hpcgate_agent.main([], environ) == 2
    assert message in capsys.readouterr().err


def test_it_runs_on_the_standard_library_alone(hpcgate, slurm, tmp_path):
    hpcgate.pending = [export(7, ADD_QOS)]
    environ = {
        "PATH": os.environ["PATH"],
        "HPCGATE_URL": hpcgate.url,
        "HPCGATE_SITE_TOKEN": KEY,
        "HPCGATE_CLUSTER": "lumi",
        "HPCGATE_AGENT_STATE_DIR": str(tmp_path / "state"),
        "HPCGATE_SACCTMGR": str(slurm.bin / "sacctmgr"),
        "HPCGATE_SACCT": str(slurm.bin / "sacct"),
    }

    # -I -S: no site-packages, no user site, no PYTHON* variables: only the standard library.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(AGENT_PATH)], env=environ, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "applied export 7" in done.stdout and "imported=1" in done.stdout
