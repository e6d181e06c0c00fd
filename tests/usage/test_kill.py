"""Killing an import at a bad moment, on PostgreSQL: no process, session or lock outlives it, the
run says it was interrupted, the next import starts at once and the totals end exact."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from allocations import services as allocation_services
from bench.generate import sacct_lines
from core.locks import process_alive
from systems.models import Cluster
from tests.factories import make_organisation
from usage.accounting import JobRecord, parse_sacct
from usage.models import UsageImport, UsageRecord

ROOT = Path(__file__).resolve().parents[2]
JOBS = 60_000  # about 220,000 lines with their steps: three batches of 20,000 runs and a bit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="kill safety rests on PostgreSQL sessions and locks (DATABASE_URL=postgres://...)",
    ),
]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def manage(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "1", "HPCGATE_TESTING": "0", "DATABASE_URL": database_url()}
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True, **popen
    )


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not so after {seconds} s: {what}")
        time.sleep(0.05)


def other_sessions(where: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}"
        )
        return cursor.fetchone()[0]


def advisory_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def accounting(transactional_db, tmp_path):
    """Leonardo with allocations for half the generator's accounts, a sacct dump of JOBS jobs
    with their steps, and what an exact import of it adds up to."""
    from systems.reference import reference_data_seed

    reference_data_seed()
    leonardo = Cluster.objects.get(name="leonardo")
    organisation = make_organisation()
    for number in range(0, 200, 2):
        allocation_services.allocation_create(
            organisation=organisation, project="Bench", partition=leonardo.partitions.get(),
            account=f"proj_{number:03d}", gpu_hours=10**6, start=date(2025, 12, 1),
            end=date(2026, 12, 31), state="active",
        )  # fmt: skip
    lines = list(sacct_lines(JOBS))
    path = tmp_path / "sacct.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = [item for item in parse_sacct(lines, tz=UTC) if type(item) is JobRecord]
    expected = (len(runs), sum(run.gpus * run.elapsed_seconds for run in runs))
    return leonardo, lines, path, expected


def totals(cluster) -> tuple[int, int]:
    records = UsageRecord.objects.filter(cluster=cluster)
    return records.count(), records.aggregate(s=Sum("gpu_seconds"))["s"] or 0


def import_whole_file(path: Path) -> tuple[float, str]:
    started = time.monotonic()
    process = manage(
        "import_usage", "--cluster", "leonardo", "--timezone", "UTC", str(path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return time.monotonic() - started, out.strip().splitlines()[-1]


def test_sigkill_mid_file_leaves_no_orphan_no_open_transaction_and_exact_totals(accounting):
    cluster, lines, path, expected = accounting
    # The input comes through a pipe, as from `sacct ... | import_usage -`: it is killed while
    # reading, after a batch was committed, with the parsing process mid-file beside it.
    process = manage(
        "import_usage", "--cluster", "leonardo", "--timezone", "UTC", "-",
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    process.stdin.write("\n".join(lines[: len(lines) // 2]) + "\n")
    process.stdin.flush()
    wait_for(lambda: UsageImport.objects.filter(imported__gt=0).exists(), what="a committed batch")
    children = children_of(process.pid)
    assert children, "the import parses in a second process"
    run = UsageImport.objects.get()
    assert run.status == UsageImport.Status.RUNNING and run.pid == process.pid

    # Killed as `kill -9 <pid>` would, while whatever writes its input (sacct) goes on:
    # the pipe stays open until the end of the test.
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    # no orphan: the parsing process died with its parent
    wait_for(lambda: not any(process_alive(run.host, pid) for pid in children), 10, "orphans")
    # no session left idle in a transaction, no lock held: the server saw the connection go
    # (a statement the server was running when the client died finishes first)
    wait_for(lambda: other_sessions("state LIKE 'idle in transaction%'") == 0, 30, "idle tx")
    wait_for(lambda: advisory_locks_held() == 0, 30, "advisory locks")
    partial = totals(cluster)
    assert 0 < partial[0] < expected[0]

    # the next import of the cluster starts at once, marks the killed run interrupted, and
    # completes what it left: every run once, every GPU-second once
    seconds, _ = import_whole_file(path)
    assert seconds < 120
    run.refresh_from_db()
    assert run.status == UsageImport.Status.INTERRUPTED and run.finished_at is not None
    assert totals(cluster) == expected
    last = UsageImport.objects.latest("id")
    assert last.status == UsageImport.Status.DONE
    assert last.imported + last.updated + last.unchanged + last.unmatched == expected[0]
    process.stdin.close()


@pytest.mark.parametrize(
    ("signum", "said"),
    [(signal.SIGTERM, "stopped by SIGTERM"), (signal.SIGINT, "Ctrl-C")],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_sigterm_or_ctrl_c_marks_the_run_interrupted_on_the_way_out(accounting, signum, said):
    cluster, lines, path, expected = accounting
    process = manage(
        "import_usage", "--cluster", "leonardo", "--timezone", "UTC", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process.stdin.write("\n".join(lines[: len(lines) // 2]) + "\n")
    process.stdin.flush()
    wait_for(lambda: UsageImport.objects.filter(imported__gt=0).exists(), what="a committed batch")
    children = children_of(process.pid)

    process.send_signal(signum)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 128 + signum  # 143 or 130, as a shell reports them
    assert f"interrupted ({said})" in err
    run = UsageImport.objects.get()
    assert run.status == UsageImport.Status.INTERRUPTED
    assert "importing the same input again completes it" in run.error
    assert not any(process_alive(run.host, pid) for pid in children)
    wait_for(lambda: other_sessions("state LIKE 'idle in transaction%'") == 0, 10, "idle tx")
    import_whole_file(path)
    assert totals(cluster) == expected


@pytest.mark.worker
@pytest.mark.skipif(
    not settings.CELERY_BROKER_CONFIGURED,
    reason="no CELERY_BROKER_URL configured (e.g. redis://127.0.0.1:6379/12)",
)
def test_a_worker_killed_mid_spool_import_leaves_the_file_imported_exactly_once(
    accounting, tmp_path, settings
):
    from config.celery import app
    from usage.tasks import usage_spool_import

    cluster, lines, path, expected = accounting
    spool = tmp_path / "spool"
    folder = spool / "leonardo"
    folder.mkdir(parents=True)
    dropped = folder / "sacct-2026-01.txt"
    # three copies of the month, one after the other: the same runs again, as a site that
    # re-sends overlapping windows does, and time enough to be killed mid-file
    dropped.write_text("\n".join(lines + lines[1:] + lines[1:]) + "\n", encoding="utf-8")
    os.utime(dropped, (time.time() - 600, time.time() - 600))
    queue = f"test-spool-kill-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=WARNING", "-Q", queue, "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "HPCGATE_TESTING": "0", "DATABASE_URL": database_url(),
             "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "USAGE_SPOOL_DIR": str(spool)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        app.send_task("usage.tasks.usage_spool_import", queue=queue)
        wait_for(
            lambda: UsageImport.objects.filter(source="spool", imported__gt=0).exists(),
            120,
            "the spool import's first batch",
        )
        children = children_of(worker.pid)
        run = UsageImport.objects.get(source="spool")
        assert run.status == UsageImport.Status.RUNNING

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    wait_for(lambda: not any(process_alive(run.host, pid) for pid in children), 10, "orphans")
    wait_for(lambda: advisory_locks_held() == 0, 10, "the task lock and the run's lock")
    assert other_sessions("state LIKE 'idle in transaction%'") == 0
    assert [p.name for p in (folder / "processing").iterdir()] == [dropped.name]
    assert 0 < totals(cluster)[0] < expected[0]

    # the next run of the periodic task (redelivered, or the next beat): not skipped, it takes
    # the stranded file up again
    settings.USAGE_SPOOL_DIR = spool
    assert usage_spool_import.delay().get() == "files=1"

    assert not list((folder / "processing").iterdir())
    assert sorted(p.name for p in (folder / "done").iterdir()) == [
        dropped.name, f"{dropped.name}.report.json"
    ]  # fmt: skip
    assert totals(cluster) == expected
    run.refresh_from_db()
    assert run.status == UsageImport.Status.INTERRUPTED
    assert UsageImport.objects.latest("id").status == UsageImport.Status.DONE
