"""The first check after many subjects cross a line: the same statements as after a few.

Kept within one batch of SQLite's bulk inserts (999 parameters), which PostgreSQL does not
split at all."""

from datetime import date

from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation, AllocationEvent
from compliance.models import Alert, LargeRunEntry
from compliance.monitoring import thresholds_check
from systems.models import Partition
from tests.factories import make_allocation, make_organisation, make_usage_record

TODAY = date(2026, 3, 1)


def _gpu_seconds(flop: float, cluster: str) -> int:
    peak = Partition.objects.get(cluster__name=cluster).peak_flops
    return round(flop / (peak * 0.4))


def _cross(companies: range) -> None:
    """Each company's one model passes the GPAI line and uses up its grant."""
    for i in companies:
        allocation = make_allocation(
            organisation=make_organisation(registration_id=f"FI-CROSS-{i}"),
            cluster="leonardo",
            account=f"cross_{i}",
            gpu_hours=1_000,
            model_name=f"model-{i}",
        )
        make_usage_record(allocation=allocation, gpu_seconds=_gpu_seconds(1.2e23, "leonardo"))


def _grow(companies: range) -> None:
    for i in companies:
        make_usage_record(
            allocation=Allocation.objects.get(account=f"cross_{i}"),
            gpu_seconds=_gpu_seconds(0.5e23, "leonardo"),
        )


def test_a_first_run_with_many_crossings_takes_as_many_queries_as_one_with_few(reference_data):
    _cross(range(1))
    thresholds_check(today=TODAY)
    _cross(range(1, 3))
    with CaptureQueriesContext(connection) as few:
        thresholds_check(today=TODAY)
    _cross(range(3, 9))
    with CaptureQueriesContext(connection) as many:
        result = thresholds_check(today=TODAY)

    assert len(many) == len(few)
    assert len(result.exhausted) == 6
    assert len(result.register_opened) == 12
    for i in range(9):
        allocation = Allocation.objects.get(account=f"cross_{i}")
        assert allocation.exhausted_at is not None
        events = AllocationEvent.objects.filter(allocation=allocation, action="exhausted")
        assert events.count() == 1
        levels = set(allocation.alerts.values_list("level", flat=True))
        assert {"allocation_75", "allocation_90", "allocation_100", "gpai"} <= levels
        group_entry = LargeRunEntry.objects.get(scope="organisation", subject=f"FI-CROSS-{i}")
        assert list(group_entry.allocations.all()) == [allocation]
        model_entry = LargeRunEntry.objects.get(scope="model", subject=f"model-{i}")
        assert list(model_entry.allocations.all()) == [allocation]
        assert model_entry.category == LargeRunEntry.Category.GPAI
        assert model_entry.compute_flop == 1.2e23
    # Every register entry has the history row of its creation.
    assert LargeRunEntry.history.filter(history_type="+").count() == LargeRunEntry.objects.count()


def test_figures_that_move_for_many_entries_take_as_many_queries_as_for_few(reference_data):
    _cross(range(9))
    thresholds_check(today=TODAY)
    _grow(range(2))
    with CaptureQueriesContext(connection) as few:
        thresholds_check(today=TODAY)
    _grow(range(2, 9))
    with CaptureQueriesContext(connection) as many:
        thresholds_check(today=TODAY)

    assert len(many) == len(few)
    for i in range(9):
        entry = LargeRunEntry.objects.get(scope="model", subject=f"model-{i}")
        assert entry.compute_flop == 1.7e23
        assert [h.compute_flop for h in entry.history.order_by("history_date", "history_id")] == [
            1.2e23,
            1.7e23,
        ]
    assert Alert.objects.filter(level="gpai", scope="model").count() == 9
