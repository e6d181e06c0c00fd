"""Declared plans against the accounting: a plan used past its declared compute, and a model
whose compute on all systems outgrows its largest declaration."""

from datetime import timedelta

import pytest
from django.utils import timezone

from allocations.models import Allocation
from compliance.models import Alert
from systems.models import Partition, ThresholdPolicy
from tests.compliance.factories import allocation, job_with_flop, organisation, planned, raised
from tests.factories import make_application
from vetting.models import Application
from vetting.services import review as workflow


def plan_lines(lines):
    return [line for line in lines if line[0] in ("plan_overrun", "model_above_plan")]


def test_approval_keeps_the_declared_plan_on_every_allocation(
    applicant, open_call, reviewer, other_reviewer, call_manager
):
    application = make_application(
        applicant=applicant,
        call=open_call,
        state=Application.State.REVIEWED,
        reviewers=[reviewer, other_reviewer],
        manager=call_manager,
        expected_utilisation=0.25,
    )
    leonardo = Partition.objects.get(cluster__name="leonardo")
    decision = workflow.application_approve(
        application=application,
        actor=call_manager,
        reason="Strong team.",
        grants={leonardo.pk: 20_000},
    )
    allocation = decision.allocations.get()
    assert allocation.plan_reference == f"application #{application.pk}"
    # The declared total is the larger estimate: 6 x 7e9 parameters x 2e11 tokens.
    assert allocation.planned_flop == pytest.approx(8.4e21)
    assert allocation.planned_hardware_flop == pytest.approx(20_000 * 3600 * 312e12 * 0.25)
    assert (allocation.planned_parameters, allocation.planned_tokens) == (7e9, 2e11)


def test_a_granted_plan_used_past_its_declared_compute_raises_plan_overrun(
    applicant, open_call, reviewer, other_reviewer, call_manager
):
    # The applicant expected 25 % of peak; at the policy's 40 % the grant runs past the plan.
    application = make_application(
        applicant=applicant,
        call=open_call,
        state=Application.State.REVIEWED,
        reviewers=[reviewer, other_reviewer],
        manager=call_manager,
        expected_utilisation=0.25,
        parameters=3_000_000_000,
        start=timezone.localdate(),
    )
    leonardo = Partition.objects.get(cluster__name="leonardo")
    grant = workflow.application_approve(
        application=application, actor=call_manager, reason="ok", grants={leonardo.pk: 20_000}
    ).allocations.get()
    declared = grant.planned_flop
    assert declared == pytest.approx(20_000 * 3600 * 312e12 * 0.25)
    job_with_flop(grant, 0.9 * declared, days_ago=1)
    assert plan_lines(raised()) == []
    job_with_flop(grant, 0.2 * declared, days_ago=1)

    (line,) = plan_lines(raised())

    assert line[:3] == ("plan_overrun", "allocation", grant.account)
    assert float(line[3]) == pytest.approx(1.1 * declared, rel=1e-3)
    assert float(line[4]) == pytest.approx(declared)
    alert = Alert.objects.get(level="plan_overrun")
    assert alert.evidence["plan"] == f"application #{application.pk}"
    assert alert.evidence["declared_flop"] == pytest.approx(declared)
    assert alert.evidence["declared_parameters"] == 3_000_000_000


@pytest.fixture
def north(reference_data):
    return organisation("DE-NORTH-1")


def test_usage_within_the_plan_raises_nothing(north):
    a = allocation(north, "leonardo", "north_1", model_name="north-13b", **planned("p1", 5e21))
    job_with_flop(a, 4.9e21)
    assert plan_lines(raised()) == []


def test_an_allocation_past_its_end_date_raises_no_plan_overrun(north):
    today = timezone.localdate()
    a = allocation(
        north,
        "leonardo",
        "north_1",
        start=today - timedelta(days=90),
        end=today - timedelta(days=1),
        state=Allocation.State.EXPIRED,
        **planned("p1", 5e21),
    )
    job_with_flop(a, 6e21, days_ago=30)
    assert plan_lines(raised()) == []


def test_a_plan_over_two_systems_is_summed_and_raised_on_each_allocation(north):
    leo = allocation(north, "leonardo", "north_leo", **planned("application #7", 5e21))
    mn5 = allocation(north, "marenostrum5", "north_mn5", **planned("application #7", 5e21))
    job_with_flop(leo, 3e21)
    job_with_flop(mn5, 3e21)

    lines = plan_lines(raised())

    assert sorted((level, subject) for level, _, subject, _, _ in lines) == [
        ("plan_overrun", "north_leo"),
        ("plan_overrun", "north_mn5"),
    ]
    assert {line[3] for line in lines} == {"6e+21"}
    assert {line[4] for line in lines} == {"5e+21"}


def test_a_model_above_its_largest_declaration_by_the_factor_raises_model_above_plan(
    reference_data,
):
    parent = organisation("DE-NORTH-1")
    child = organisation("FI-NORTH-2", controlled_by="DE-NORTH-1")
    leo = allocation(
        parent, "leonardo", "north_leo", model_name="north-13b", **planned("application #1", 5e21)
    )
    mn5 = allocation(
        child,
        "marenostrum5",
        "north_mn5",
        model_name="North-13B",
        **planned("application #2", 3.5e21),
    )
    job_with_flop(leo, 4.5e21)
    job_with_flop(mn5, 2.9e21)
    assert plan_lines(raised()) == []  # 7.4e21: within 1.5 x 5e21
    job_with_flop(mn5, 0.2e21)

    lines = plan_lines(raised())

    assert lines == [("model_above_plan", "model", "north-13b", "7.6e+21", "7.5e+21")]
    evidence = Alert.objects.get(level="model_above_plan").evidence
    assert evidence["largest_plan"] == "application #1"
    assert evidence["largest_declared_flop"] == 5e21
    assert [d["plan"] for d in evidence["declarations"]] == ["application #1", "application #2"]
    assert evidence["used_flop_per_system"] == {"leonardo": 4.5e21, "marenostrum5": 3.1e21}


def test_compute_of_allocations_without_a_plan_counts_for_the_model(north):
    declared = allocation(
        north, "leonardo", "north_leo", model_name="north-13b", **planned("application #1", 4e21)
    )
    imported = allocation(north, "vega", "north_vega", model_name="north-13b")
    job_with_flop(declared, 3e21)
    job_with_flop(imported, 3.5e21)

    assert [line[:3] for line in plan_lines(raised())] == [
        ("model_above_plan", "model", "north-13b")
    ]


def test_one_plan_used_past_its_declaration_is_a_plan_overrun_not_a_model_alert(north):
    a = allocation(
        north, "leonardo", "north_leo", model_name="north-13b", **planned("application #1", 2e21)
    )
    job_with_flop(a, 4e21)

    assert [line[0] for line in plan_lines(raised())] == ["plan_overrun"]


def test_imported_allocations_without_a_plan_raise_no_plan_alert(north):
    a = allocation(north, "leonardo", "north_leo", model_name="north-13b")
    job_with_flop(a, 8e21)

    assert plan_lines(raised()) == []


def test_the_policy_factors_set_and_switch_off_the_plan_levels(north):
    a = allocation(
        north, "leonardo", "north_leo", model_name="north-13b", **planned("application #1", 5e21)
    )
    job_with_flop(a, 6e21)
    ThresholdPolicy.objects.update(plan_overrun_factor=1.3)
    assert plan_lines(raised()) == []
    ThresholdPolicy.objects.update(plan_overrun_factor=None)
    job_with_flop(a, 2e21)
    assert plan_lines(raised()) == []
    ThresholdPolicy.objects.update(plan_overrun_factor=1.3)
    assert [line[0] for line in plan_lines(raised())] == ["plan_overrun"]


def test_a_model_spelt_two_ways_is_named_as_its_first_allocation_spells_it(reference_data):
    from compliance.monitoring import allocation_figures, efforts_by_model

    north = organisation("DE-NORTH-1")
    allocation(north, "leonardo", "north_leo", model_name="north-13b")
    allocation(north, "marenostrum5", "north_mn5", model_name="North-13B")
    first, second = allocation_figures(policy=ThresholdPolicy.objects.in_force())

    for rows in ([first, second], [second, first]):
        (effort,) = efforts_by_model(rows)
        assert effort.subject == "north-13b"
