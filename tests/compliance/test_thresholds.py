import pytest

from compliance.thresholds import allocation_levels, compute_levels, levels_reached
from organisations.groups import OrganisationNode, organisation_groups
from systems.estimates import PolicyFigures


def test_allocation_levels_are_named_after_their_percentage():
    levels = allocation_levels([100, 75, 90])
    assert [(lv.name, lv.threshold) for lv in levels] == [
        ("allocation_75", 0.75),
        ("allocation_90", 0.9),
        ("allocation_100", 1.0),
    ]


def test_compute_warnings_sit_at_the_policy_share_of_each_threshold():
    levels = {lv.name: lv.threshold for lv in compute_levels(PolicyFigures(warning_share=0.5))}
    assert levels == {
        "gpai_warning": pytest.approx(5e22),
        "gpai": 1e23,
        "systemic_risk_warning": pytest.approx(5e24),
        "systemic_risk": 1e25,
    }


@pytest.mark.parametrize(
    ("flop", "expected"),
    [
        (4.9e22, []),
        (5e22, ["gpai_warning"]),
        (1e23, ["gpai_warning", "gpai"]),
        (6e24, ["gpai_warning", "gpai", "systemic_risk_warning"]),
        (1e25, ["gpai_warning", "gpai", "systemic_risk_warning", "systemic_risk"]),
    ],
)
def test_a_level_is_reached_when_its_threshold_is_met(flop, expected):
    reached = levels_reached(flop, compute_levels(PolicyFigures()))
    assert [lv.name for lv in reached] == expected


def test_controlled_companies_form_one_group_named_after_the_ultimate_controller():
    orgs = [
        OrganisationNode(1, "DE-HOLD-1", ""),
        OrganisationNode(2, "FI-SUB-2", "DE-HOLD-1"),
        OrganisationNode(3, "ES-SUBSUB-3", "FI-SUB-2"),
        OrganisationNode(4, "IT-ALONE-4", ""),
    ]
    groups = organisation_groups(orgs)
    assert groups == {1: "DE-HOLD-1", 2: "DE-HOLD-1", 3: "DE-HOLD-1", 4: "IT-ALONE-4"}


def test_a_shared_member_joins_two_otherwise_unrelated_companies():
    orgs = [OrganisationNode(1, "FI-A", ""), OrganisationNode(2, "SE-B", "")]
    assert organisation_groups(orgs) == {1: "FI-A", 2: "SE-B"}
    assert organisation_groups(orgs, shared_members=[(1, 2)]) == {1: "FI-A", 2: "FI-A"}


def test_same_registration_id_written_differently_is_one_company():
    orgs = [OrganisationNode(1, "fi 123", ""), OrganisationNode(2, "FI123", "")]
    groups = organisation_groups(orgs)
    assert groups[1] == groups[2]


def test_a_control_cycle_still_yields_one_group():
    orgs = [OrganisationNode(1, "A", "B"), OrganisationNode(2, "B", "A")]
    assert organisation_groups(orgs) == {1: "A", 2: "A"}


def test_sister_companies_of_a_controller_that_never_applied_are_one_group():
    orgs = [
        OrganisationNode(1, "A", "ZZ-PARENT"),
        OrganisationNode(2, "B", "zz-parent"),
        OrganisationNode(3, "C", ""),
    ]
    assert organisation_groups(orgs) == {1: "ZZ-PARENT", 2: "ZZ-PARENT", 3: "C"}


def test_level_figures_read_as_people_read_them():
    from compliance.thresholds import level_figure

    assert level_figure("allocation_90", 0.9123) == "91 %"
    assert level_figure("gpai", 1e23) == "1.0 × 10²³ FLOP"
    assert level_figure("footprint_gpus", 1536) == "1,536 GPUs"
    assert level_figure("footprint_memory", 98304) == "98,304 GB"
