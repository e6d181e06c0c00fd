"""The spool: complete files dropped in USAGE_SPOOL_DIR/<cluster>/ are imported once, then moved."""

import json
import os
import time

import pytest
from django.core.cache import cache

from core.locks import task_lock
from tests.factories import make_allocation, make_cluster
from tests.usage.sacct import SINCE, sacct_line, sacct_text, sample
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
