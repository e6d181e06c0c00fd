"""The spool: complete files dropped in USAGE_SPOOL_DIR/<cluster>/ are imported once, then moved."""

import json
import os
import time
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from core.locks import task_lock
from systems.models import Cluster
from tests.factories import make_allocation, make_cluster
from tests.usage.sacct import SINCE, sacct_line, sacct_text, sample
from usage.importer import usage_import
from usage.models import UsageImport, UsageRecord
from usage.tasks import usage_spool_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def spool(tmp_path, settings, reference_data):
    settings.USAGE_SPOOL_DIR = tmp_path / "spool"
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")
    folder = settings.USAGE_SPOOL_DIR / "leonardo"
    folder.mkdir(parents=True)
    cache.delete("hpcgate:lock:usage_spool_import")
    return folder


def drop(folder, name: str, text: str, *, age: float = 120) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    then = time.time() - age
    os.utime(path, (then, then))


def test_complete_file_is_imported_and_moved_to_done_with_a_report(spool):
    drop(spool, "2026-01-05.txt", sacct_text(sacct_line("1"), sacct_line("1.batch"), "x|y"))
    assert usage_spool_import.delay().get() == "files=1"
    assert not (spool / "2026-01-05.txt").exists()
    assert (spool / "done" / "2026-01-05.txt").exists()
    report = json.loads((spool / "done" / "2026-01-05.txt.report.json").read_text())
    assert report["summary"] == (
        "imported=1 updated=0 unchanged=0 steps_skipped=1 "
        "unmatched=0 rejected=1 outside_window=0 no_gpu_field=0"
    )
    assert report["rejected_lines"][0]["line"] == 4
    run = UsageImport.objects.get()
    assert run.source == "spool" and run.filename == "2026-01-05.txt"


def test_file_still_being_written_is_not_read(spool):
    drop(spool, "fresh.txt", sacct_text(sacct_line("1")), age=0)
    drop(spool, ".hidden.txt", sacct_text(sacct_line("2")))
    drop(spool, "upload.part", sacct_text(sacct_line("3")))
    assert usage_spool_import.delay().get() == "files=0"
    assert not UsageRecord.objects.exists()
    assert (spool / "fresh.txt").exists()


def test_unreadable_file_goes_to_failed_with_the_reason(spool):
    drop(spool, "broken.txt", "JobID|State\n1|COMPLETED\n")
    usage_spool_import.delay().get()
    report = json.loads((spool / "failed" / "broken.txt.report.json").read_text())
    assert report["status"] == "failed"
    assert "lacks required sacct fields" in report["error"]
    assert not UsageImport.objects.exists()


def test_pbs_files_by_suffix(spool, reference_data):
    fox = make_cluster()
    folder = spool.parent / fox.name
    folder.mkdir()
    drop(folder, "accounting.pbs", sample("xdmod-pbs-accounting-logs.log").read_text())
    usage_spool_import.delay().get()
    assert UsageImport.objects.get().unmatched == 9


def test_dropping_the_same_file_twice_never_double_counts(spool):
    text = sacct_text(sacct_line("1"), sacct_line("2"))
    drop(spool, "pull.txt", text)
    usage_spool_import.delay().get()
    drop(spool, "pull.txt", text)
    usage_spool_import.delay().get()
    assert UsageRecord.objects.count() == 2
    done = [p.name for p in (spool / "done").iterdir() if p.suffix == ".txt"]
    assert len(done) == 2 and "pull.txt" in done  # the second kept under a new name
    assert UsageImport.objects.order_by("id").last().unchanged == 2


def test_overlapping_runs_are_skipped(spool):
    drop(spool, "pull.txt", sacct_text(sacct_line("1")))
    with task_lock("usage_spool_import", timeout=60) as acquired:
        assert acquired
        assert usage_spool_import.delay().get().startswith("skipped")
    assert (spool / "pull.txt").exists()


def test_folder_of_an_unknown_cluster_is_left_alone(spool):
    stray = spool.parent / "atlantis"
    stray.mkdir()
    drop(stray, "pull.txt", sacct_text(sacct_line("1")))
    usage_spool_import.delay().get()
    assert (stray / "pull.txt").exists()


def test_times_are_read_in_the_clusters_site_zone(spool):
    drop(spool, "pull.txt", sacct_text(sacct_line("1", start="2026-01-05T09:00:00")))
    usage_spool_import.delay().get()
    # Leonardo's site is in Rome: 09:00 there in January is 08:00 UTC
    assert UsageRecord.objects.get().start == datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_a_file_left_in_processing_by_a_killed_worker_is_imported_again_once(spool):
    text = sacct_text(sacct_line("1"), sacct_line("2"))
    (spool / "processing").mkdir()
    # a worker claimed the file, imported the first line and was killed
    usage_import(
        cluster=Cluster.objects.get(name="leonardo"),
        lines=sacct_text(sacct_line("1")).split("\n"),
        source="spool",
        filename="pull.txt",
    )
    (spool / "processing" / "pull.txt").write_text(text, encoding="utf-8")

    assert usage_spool_import.delay().get() == "files=1"

    assert not list((spool / "processing").iterdir())
    assert [p.name for p in (spool / "done").iterdir()] == ["pull.txt", "pull.txt.report.json"]
    assert sorted(UsageRecord.objects.values_list("job_id", flat=True)) == ["1", "2"]
    report = json.loads((spool / "done" / "pull.txt.report.json").read_text())
    assert (report["imported"], report["unchanged"]) == (1, 1)


def test_a_symbolic_link_is_refused_not_followed(spool, tmp_path):
    secret = tmp_path / "elsewhere.txt"
    secret.write_text(sacct_text(sacct_line("1")), encoding="utf-8")
    link = spool / "pull.txt"
    link.symlink_to(secret)
    then = time.time() - 120
    os.utime(link, (then, then), follow_symlinks=False)

    usage_spool_import.delay().get()

    assert not UsageRecord.objects.exists()
    failed = spool / "failed" / "pull.txt"
    assert failed.is_symlink() and secret.exists()  # the link moved, its target untouched
    report = json.loads((spool / "failed" / "pull.txt.report.json").read_text())
    assert "symbolic link" in report["error"]


def test_a_cluster_folder_or_a_done_folder_that_is_a_link_is_not_used(spool, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    drop(outside, "pull.txt", sacct_text(sacct_line("1")))
    (spool.parent / "lumi").symlink_to(outside)  # lumi is a cluster
    drop(spool, "pull.txt", sacct_text(sacct_line("2")))
    (spool / "done").symlink_to(outside)

    usage_spool_import.delay().get()

    assert not UsageRecord.objects.filter(job_id="1").exists()
    assert (outside / "pull.txt").exists() and not (outside / "pull.txt.report.json").exists()
    assert (spool / "failed" / "pull.txt.report.json").exists()


def test_a_lock_left_by_a_killed_worker_does_not_skip_the_next_run(spool):
    import subprocess
    import sys

    from django.db import connection

    from core.locks import HOST

    drop(spool, "pull.txt", sacct_text(sacct_line("1")))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    # What a killed worker leaves: on PostgreSQL nothing (its session ended with it); elsewhere
    # a lock naming a process that is gone.
    if connection.vendor != "postgresql":
        cache.add("hpcgate:lock:usage_spool_import", f"{HOST}:{ended.stdout.strip()}", 3600)

    assert usage_spool_import.delay().get() == "files=1"
