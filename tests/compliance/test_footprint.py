"""The concurrent footprint of an organisation group: what it held at once on all systems."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.footprint import GPUS, MEMORY, RecordScope, footprint_daily, footprint_stretches
from compliance.models import Alert
from organisations.groups import organisation_groups_current
from systems.models import ThresholdPolicy
from tests.compliance.factories import allocation, job, midnight, organisation, raised


def footprint_alerts(lines):
    return [line for line in lines if line[0].startswith("footprint_")]


@pytest.fixture
def related(reference_data):
    """A parent company on Leonardo and the company it controls on MareNostrum 5."""
    parent = organisation("DE-PARENT-1")
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1")
    return (
        allocation(parent, "leonardo", "parent_llm"),
        allocation(child, "marenostrum5", "kid_llm"),
    )


def test_overlapping_large_jobs_of_related_companies_on_two_systems_are_caught(related):
    leo, mn5 = related
    day = midnight(6)
    a = job(leo, 600, day, day + timedelta(hours=48))
    b = job(mn5, 600, day + timedelta(hours=12), day + timedelta(hours=42))

    lines = footprint_alerts(raised())

    assert ("footprint_gpus", "organisation", "DE-PARENT-1", "1200", "512") in lines
    # 1,200 GPUs with 64 GB each: 76,800 GB against 32,768
    assert ("footprint_memory", "organisation", "DE-PARENT-1", "76800", "32768") in lines
    alert = Alert.objects.get(level="footprint_gpus")
    evidence = alert.evidence
    assert evidence["systems"] == ["leonardo", "marenostrum5"]
    assert evidence["organisations"] == ["Company DE-PARENT-1", "Company FI-CHILD-2"]
    assert evidence["hours"] == 30.0
    assert evidence["peak_systems"] == 2
    assert evidence["from"] == (day + timedelta(hours=12)).isoformat()
    assert {(j["system"], j["job_id"]) for j in evidence["jobs"]} == {
        ("leonardo", a.job_id),
        ("marenostrum5", b.job_id),
    }
    assert evidence["jobs_total"] == 2
    # 600 x 312 + 600 x 989 TFLOP/s
    assert evidence["peak_pflops"] == pytest.approx(780.6)
    assert [d["gpus"] for d in evidence["daily"]] == [1200, 1200]
    assert sorted(alert.organisation_ids) == sorted([leo.organisation_id, mn5.organisation_id])


def test_the_same_jobs_one_after_the_other_are_not_caught(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day + timedelta(hours=48), day + timedelta(hours=78))

    assert footprint_alerts(raised()) == []


def test_a_second_check_raises_the_footprint_only_once(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))
    assert len(footprint_alerts(raised())) == 2
    assert raised() == []


def test_an_overlap_shorter_than_the_policy_hours_is_not_caught(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day + timedelta(hours=30), day + timedelta(hours=53))  # 18 hours together

    assert footprint_alerts(raised()) == []


def test_many_gpus_on_one_system_are_not_a_split(related):
    leo, _ = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(leo, 600, day, day + timedelta(hours=48))

    assert footprint_alerts(raised()) == []


def test_a_running_job_counts_until_now(related):
    leo, mn5 = related
    now = timezone.now()
    job(leo, 600, now - timedelta(hours=40), None)
    job(mn5, 600, now - timedelta(hours=30), now - timedelta(hours=2))

    assert [line[0] for line in footprint_alerts(raised())] == [
        "footprint_gpus",
        "footprint_memory",
    ]


def test_unrelated_companies_are_not_summed(reference_data):
    leo = allocation(organisation("DE-ONE-1"), "leonardo", "one_llm")
    mn5 = allocation(organisation("ES-TWO-2"), "marenostrum5", "two_llm")
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))

    assert footprint_alerts(raised()) == []


def test_a_policy_without_a_footprint_level_raises_none(related):
    ThresholdPolicy.objects.update(footprint_gpus=None, footprint_memory_gb=None)
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))

    assert footprint_alerts(raised()) == []


def test_the_policy_sets_gpus_systems_and_hours(related):
    ThresholdPolicy.objects.update(
        footprint_gpus=100, footprint_min_systems=1, footprint_min_hours=2
    )
    leo, _ = related
    day = midnight(6)
    job(leo, 101, day, day + timedelta(hours=3))

    assert ("footprint_gpus", "organisation", "DE-PARENT-1", "101", "100") in raised()


def test_jobs_of_allocations_long_over_are_left_out(related):
    leo, mn5 = related
    today = timezone.localdate()
    for old in (leo, mn5):
        old.state = "expired"
        old.start, old.end = today - timedelta(days=200), today - timedelta(days=60)
        old.save()
    day = midnight(100)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))

    assert footprint_alerts(raised()) == []


def _groups():
    return organisation_groups_current().subjects


def test_daily_peaks_cover_every_day_of_the_period(related):
    leo, mn5 = related
    day = midnight(10)
    job(leo, 100, day + timedelta(hours=1), day + timedelta(hours=3))
    job(leo, 50, day + timedelta(hours=2), day + timedelta(days=2, hours=6))
    job(mn5, 30, day + timedelta(days=2, hours=5), day + timedelta(days=2, hours=7))

    days = footprint_daily(groups=_groups(), now=timezone.now())["DE-PARENT-1"]

    assert [(d.day, d.gpus, d.systems) for d in days] == [
        (day.date(), 150, 1),
        ((day + timedelta(days=1)).date(), 50, 1),
        ((day + timedelta(days=2)).date(), 80, 2),
    ]
    assert days[0].tflops == pytest.approx(150 * 312)
    assert days[2].memory_gb == 50 * 64 + 30 * 64


def test_daily_peaks_keep_to_the_period_asked_for(related):
    leo, _ = related
    day = midnight(10)
    job(leo, 50, day, day + timedelta(days=3))

    scope = RecordScope(since=day + timedelta(days=1), until=day + timedelta(days=2))
    days = footprint_daily(groups=_groups(), now=timezone.now(), scope=scope)["DE-PARENT-1"]

    assert [(d.day, d.gpus) for d in days] == [((day + timedelta(days=1)).date(), 50)]


def test_memory_stretches_are_measured_in_gb(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 10, day, day + timedelta(hours=10))
    job(mn5, 10, day, day + timedelta(hours=10))

    found = footprint_stretches(
        groups=_groups(),
        levels={MEMORY: 1000, GPUS: 20},
        min_systems=2,
        min_hours=9,
        now=timezone.now(),
    )

    assert found[MEMORY]["DE-PARENT-1"].peak_memory_gb == 1280
    assert found[MEMORY]["DE-PARENT-1"].hours == 10
    assert found[GPUS] == {}  # 20 GPUs exactly: not more than the level


def test_the_sweep_takes_two_queries_whatever_the_number_of_jobs(related):
    leo, mn5 = related
    day = midnight(6)
    for hour in range(40):
        job(leo if hour % 2 else mn5, 40, day + timedelta(hours=hour), day + timedelta(hours=50))
    groups = _groups()
    with CaptureQueriesContext(connection) as queries:
        found = footprint_stretches(
            groups=groups,
            levels={GPUS: 512, MEMORY: 30_000},
            min_systems=2,
            min_hours=1,
            now=timezone.now(),
        )
    sweep = [q for q in queries if "SAVEPOINT" not in q["sql"] and "work_mem" not in q["sql"]]
    assert len(sweep) == 2  # the groups' clusters, then the sweep
    assert found[GPUS]["DE-PARENT-1"].peak_gpus == 1600
    assert found[MEMORY]["DE-PARENT-1"].peak_memory_gb == 1600 * 64


def test_one_job_handing_over_to_the_next_keeps_the_stretch_unbroken(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=20))
    job(leo, 600, day + timedelta(hours=20), day + timedelta(hours=48))
    job(mn5, 600, day, day + timedelta(hours=48))

    found = footprint_stretches(
        groups=_groups(), levels={GPUS: 512}, min_systems=2, min_hours=40, now=timezone.now()
    )

    stretch = found[GPUS]["DE-PARENT-1"]
    assert (stretch.start, stretch.end, stretch.peak_gpus) == (
        day,
        day + timedelta(hours=48),
        1200,
    )


def test_of_two_stretches_the_one_with_the_higher_peak_is_kept(related):
    leo, mn5 = related
    first, second = midnight(10), midnight(5)
    job(leo, 600, first, first + timedelta(hours=30))
    job(mn5, 600, first, first + timedelta(hours=30))
    job(leo, 900, second, second + timedelta(hours=30))
    job(mn5, 600, second, second + timedelta(hours=30))

    found = footprint_stretches(
        groups=_groups(), levels={GPUS: 512}, min_systems=2, min_hours=24, now=timezone.now()
    )

    assert found[GPUS]["DE-PARENT-1"].start == second
    assert found[GPUS]["DE-PARENT-1"].peak_gpus == 1500


def test_the_check_tells_the_sweep_what_each_allocation_held_without_reading_usage_again(related):
    from compliance.monitoring import allocation_figures, thresholds_check

    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day + timedelta(hours=12), None)  # still running
    now = timezone.now().replace(microsecond=0)

    figures = {
        a.pk: a.held_gpu_seconds
        for a in allocation_figures(policy=ThresholdPolicy.objects.in_force(), now=now)
    }

    assert figures[leo.pk] == 600 * 48 * 3600
    assert figures[mn5.pk] == 600 * (now - day - timedelta(hours=12)).total_seconds()
    with CaptureQueriesContext(connection) as queries:
        thresholds_check()
    (sweep,) = [q["sql"] for q in queries if "heavy AS" in q["sql"]]
    assert sweep.count('"usage_usagerecord"') == 1
    assert {a.level for a in Alert.objects.all()} >= {"footprint_gpus", "footprint_memory"}


def test_what_jobs_held_is_worked_out_for_the_organisations_asked_for_alone(related):
    from compliance.monitoring import allocation_figures

    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 300, day, day + timedelta(hours=2))
    policy = ThresholdPolicy.objects.in_force()
    now = timezone.now()

    figures = {
        a.pk: (a.held_gpu_seconds, a.used_gpu_seconds)
        for a in allocation_figures(policy=policy, now=now, held_by={leo.organisation_id})
    }

    assert figures[leo.pk] == (600 * 48 * 3600, 600 * 48 * 3600)
    assert figures[mn5.pk] == (0, 300 * 2 * 3600)
    nobody = allocation_figures(policy=policy, now=now, held_by=set())
    assert {a.held_gpu_seconds for a in nobody} == {0}


def test_given_totals_give_the_same_stretches_and_a_group_said_to_hold_little_is_skipped(related):
    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day + timedelta(hours=12), day + timedelta(hours=42))
    groups, now = _groups(), timezone.now()
    held = {leo.organisation_id: 600 * 48 * 3600, mn5.organisation_id: 600 * 30 * 3600}

    def stretches(**given):
        return footprint_stretches(
            groups=groups,
            levels={GPUS: 512, MEMORY: 32_768},
            min_systems=2,
            min_hours=24,
            now=now,
            **given,
        )

    computed = stretches()
    assert computed[GPUS]["DE-PARENT-1"].peak_gpus == 1200
    assert stretches(held_gpu_seconds=held) == computed
    # 100 GPUs for 12 hours cannot hold more than 512 GPUs (or 32,768 GB) for 24 hours
    little = {leo.organisation_id: 100 * 12 * 3600}
    assert stretches(held_gpu_seconds=little) == {GPUS: {}, MEMORY: {}}


def test_a_record_ending_before_it_starts_does_not_hide_a_stretch(related):
    from usage.models import UsageRecord

    leo, mn5 = related
    day = midnight(6)
    job(leo, 600, day, day + timedelta(hours=48))
    job(mn5, 600, day + timedelta(hours=12), day + timedelta(hours=42))
    broken = job(leo, 600, day, day + timedelta(hours=1))
    UsageRecord.objects.filter(pk=broken.pk).update(end=day - timedelta(hours=200))

    lines = footprint_alerts(raised())

    assert ("footprint_gpus", "organisation", "DE-PARENT-1", "1200", "512") in lines
